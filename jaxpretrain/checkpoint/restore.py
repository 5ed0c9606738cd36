"""Reading saved steps: which step, whether its arrays fit this config, and the arrays themselves.

Everything that reads another run's (or its own) checkpoint goes through here: the warm start
(`init_from`), `evaluate`, `generate` and `export` pick the step with `resolve_step`, compare
shapes with `check_shapes` (as `Checkpointer.restore` does) and read with `restore_subtree`
(onto this run's shardings) or `restore_params` (numpy, no model or mesh).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxpretrain.errors import UserError

Shape = tuple[int, ...]


def resolve_step(
  workdir: str, step: int | None = None, *, best_metric: str = "", best_mode: str = "min", what: str = ""
) -> tuple[int, str]:
  """The step to read: `step` when given, else the best by `best_metric`, else the latest.

  Args:
    workdir: a run directory.
    step: the step asked for; None or negative = none.
    best_metric / best_mode: without `step`, the best step by this eval metric when the run kept
      one ("" = the latest).
    what: how messages name the run (default: `workdir`).

  Returns:
    (step, how it was chosen: "given" | "best" | "latest").

  Raises:
    UserError: when `workdir` has no complete checkpoint, or none at `step`.
  """
  from jaxpretrain.checkpoint.manager import require_run

  ckpt = require_run(workdir, best_metric=best_metric, best_mode=best_mode)
  try:
    if step is not None and step >= 0:
      steps = ckpt.all_steps()
      if step not in steps:
        raise UserError(f"{what or workdir} has no checkpoint at step {step} (it has {', '.join(map(str, steps))})")
      return step, "given"
    if best_metric:
      best = ckpt.manager.best_step()
      if best is not None:
        return best, "best"
    return ckpt.latest_step(), "latest"
  finally:
    ckpt.close()


def _leaf_name(path) -> str:
  parts = []
  for key in path:
    for attr in ("key", "idx", "name"):
      if hasattr(key, attr):
        parts.append(str(getattr(key, attr)))
        break
  return "/".join(parts)


def flat_leaves(tree) -> dict[str, Any]:
  """{"params/encoder/layer_0/...": leaf} of a pytree (arrays, ShapeDtypeStructs or orbax metadata),
  whatever containers (dict, tuple, namedtuple) the paths cross."""
  return {_leaf_name(path): leaf for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def check_shapes(
  saved: dict,
  wanted: dict,
  mismatch: Callable[[str, Shape | None, Shape | None], str],
  *,
  optional: Callable[[str], bool] = lambda name: False,
) -> set[str]:
  """Compares a checkpoint's leaves with those this config needs, by name and shape.

  Args:
    saved: flat {name: leaf with `.shape`} of the checkpoint (see `flat_leaves`).
    wanted: flat {name: leaf with `.shape`} of this config's state.
    mismatch: fn(name, saved shape or None when absent, wanted shape or None) -> the error message.
    optional: fn(name) -> True for a leaf that may be absent on either side (not of another shape).

  Returns:
    The names on both sides.

  Raises:
    UserError: `mismatch(...)` of the first leaf (`params/...` first, then by name) that is absent
      on one side or of another shape.
  """
  for name in sorted(set(saved) | set(wanted), key=lambda n: (not n.startswith("params"), n)):
    there = tuple(saved[name].shape) if name in saved else None
    here = tuple(wanted[name].shape) if name in wanted else None
    if there != here and not (optional(name) and None in (there, here)):
      raise UserError(mismatch(name, there, here))
  return set(saved) & set(wanted)


def does_not_fit(step: int, directory: str) -> Callable[[str, Shape | None, Shape | None], str]:
  """The `check_shapes` message for a run's own checkpoint that does not fit its config."""

  def describe(shape):
    return "absent" if shape is None else f"shape {shape}"

  def mismatch(name, there, here):
    return (
      f"checkpoint step {step} in {directory} does not fit this config: {name} is {describe(there)} there "
      f"but {describe(here)} here"
    )

  return mismatch


def saved_tree(state_dir: str) -> dict:
  """The tree metadata (shapes, dtypes, shardings) of a saved TrainState, read without loading arrays."""
  absl_logger = logging.getLogger("absl")
  level = absl_logger.level
  absl_logger.setLevel(logging.ERROR)  # orbax warns about metadata files older saves lack
  try:
    metadata = ocp.PyTreeCheckpointer().metadata(state_dir)
  finally:
    absl_logger.setLevel(level)
  tree = getattr(metadata, "item_metadata", metadata)
  return tree.tree if hasattr(tree, "tree") else tree


def restore_subtree(state_dir: str, target: dict) -> dict:
  """Restores only the leaves of `target` from `state_dir`, onto their shardings.

  Args:
    state_dir: `WORKDIR/checkpoints/<step>/state`.
    target: a nested dict of arrays or ShapeDtypeStructs with shardings, a sub-tree of the saved state.

  Returns:
    `target`'s tree with the saved arrays.
  """
  restore_args = jax.tree.map(
    lambda x: ocp.ArrayRestoreArgs(sharding=x.sharding, global_shape=x.shape, dtype=x.dtype), target
  )
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), target)
  return ocp.PyTreeCheckpointer().restore(
    state_dir, args=ocp.args.PyTreeRestore(item=abstract, restore_args=restore_args, partial_restore=True)
  )


def restore_params(state_dir: str) -> dict:
  """The `params` of a saved TrainState as nested numpy arrays (no model or mesh needed).

  Args:
    state_dir: `WORKDIR/checkpoints/<step>/state`.

  Returns:
    The parameter tree, numpy leaves.
  """
  checkpointer = ocp.PyTreeCheckpointer()
  tree = checkpointer.metadata(state_dir).item_metadata.tree["params"]
  restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)
  item = jax.tree.map(lambda _: 0, tree)
  restored = checkpointer.restore(
    state_dir,
    args=ocp.args.PyTreeRestore(item={"params": item}, restore_args={"params": restore_args}, partial_restore=True),
  )
  return restored["params"]
