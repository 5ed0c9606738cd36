"""Reading saved steps: which step, whether its arrays fit this config, and the arrays themselves.

Everything that reads another run's (or its own) checkpoint goes through here: the warm start
(`init_from`), `evaluate`, `generate` and `export` pick and read the step with `read_step` (the
given step, else the best, else the newest step that loads, past corrupt ones with one warning
each), compare shapes with `check_shapes` (as `Checkpointer.restore` does) and read with
`restore_subtree` (onto this run's shardings) or `restore_params` (numpy, no model or mesh).
`step_problem` tells a truncated or partly deleted step from a whole one without reading its
arrays (also for the `checkpoints` listing).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable
from typing import Any, TypeVar

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxpretrain import paths
from jaxpretrain.errors import UserError, first_line, warn

Shape = tuple[int, ...]
T = TypeVar("T")

# An OCDBT reference to bytes in a data file: "btreenode::d/FILE:OFFSET:LENGTH" (a B-tree node) or
# "value:ocdbt.process_0/:d/FILE:OFFSET:LENGTH" (an array chunk), relative to the state directory.
_OCDBT_REF = re.compile(r"^(?P<kind>[a-z_]+):(?P<prefix>[^:]*):(?P<file>[^:]+):(?P<offset>\d+):(?P<length>\d+)$")


def step_problem(step_dir: str) -> str | None:
  """Why a saved step cannot be read, in one line, or None when it looks whole.

  Reads no arrays: checks that the save finished (`_CHECKPOINT_METADATA` and every item), that
  the JSON metadata parses, and that every B-tree node and array chunk the state's OCDBT index
  references lies within an existing file (a truncated or deleted data file is caught here).

  Args:
    step_dir: `WORKDIR/checkpoints/<step>`.

  Returns:
    The problem (e.g. "state/d/1a73... is truncated (4096 of 82901 bytes)"), or None (also for a
    remote step, which is not inspected file by file: a failed read falls back past it instead).
  """
  from jaxpretrain.checkpoint.manager import ITEMS

  if paths.is_remote(step_dir):
    return None

  if not os.path.isfile(os.path.join(step_dir, "_CHECKPOINT_METADATA")):
    return "no _CHECKPOINT_METADATA: the save did not finish"
  for item in ITEMS:
    if not os.path.isdir(os.path.join(step_dir, item)):
      return f"no {item}/"
  if not os.path.isfile(os.path.join(step_dir, "state", "_METADATA")):
    return "no state/_METADATA"
  parsed = {}
  for name in ("state/_METADATA", "state/_sharding", "meta/metadata", "tokenizer/metadata"):
    path = os.path.join(step_dir, name)
    if os.path.isfile(path):
      try:
        with open(path, encoding="utf-8") as f:
          parsed[name] = json.load(f)
      except (OSError, ValueError) as e:
        return f"{name} does not parse ({first_line(e, with_type=True)})"
  state_dir = os.path.join(step_dir, "state")
  uses_ocdbt = isinstance(parsed["state/_METADATA"], dict) and parsed["state/_METADATA"].get("use_ocdbt")
  if os.path.isfile(os.path.join(state_dir, "manifest.ocdbt")):
    return _ocdbt_problem(state_dir)
  if uses_ocdbt:
    return "state/manifest.ocdbt is missing"
  return None


def _ocdbt_problem(state_dir: str) -> str | None:
  """The first OCDBT reference of `state_dir` that points past the end of its file, or None."""
  import tensorstore as ts

  sizes: dict[str, int] = {}

  def ref_problem(ref: str) -> str | None:
    match = _OCDBT_REF.match(ref)
    if match is None:  # a form this check does not know: left to the read
      return None
    relative = os.path.join(match["prefix"], match["file"])
    if relative not in sizes:
      path = os.path.join(state_dir, relative)
      sizes[relative] = os.path.getsize(path) if os.path.isfile(path) else -1
    end = int(match["offset"]) + int(match["length"])
    if sizes[relative] < 0:
      return f"state/{relative} is missing"
    if sizes[relative] < end:
      return f"state/{relative} is truncated ({sizes[relative]} of at least {end} bytes)"
    return None

  try:
    base = ts.KvStore.open(f"file://{os.path.abspath(state_dir)}/").result()
    versions = ts.ocdbt.dump(base).result().get("versions") or []
    root = versions[-1].get("root", {}).get("location") if versions else None
    pending = [root] if root else []
    while pending:
      node = pending.pop()
      problem = ref_problem(node)
      if problem:
        return problem
      for entry in ts.ocdbt.dump(base, node).result().get("entries", []):
        for value in entry.values():
          if isinstance(value, str) and value.startswith("btreenode:"):
            pending.append(value)
          elif isinstance(value, str) and value.startswith("value:"):
            problem = ref_problem(value)
            if problem:
              return problem
  except Exception as e:  # an unreadable manifest or B-tree node
    return f"state index unreadable ({first_line(e, with_type=True)})"
  return None


def read_step(
  workdir: str,
  read: Callable[[int], T],
  step: int | None = None,
  *,
  best_metric: str = "",
  best_mode: str = "min",
  what: str = "",
) -> tuple[int, str, T]:
  """Reads a saved step with `read`: `step` when given, else the best, else the newest that loads.

  The one place that picks the checkpoint a command reads. Without `step`, a step that is
  incomplete or corrupt (`step_problem`, or `read` failing with anything but a `UserError`) is
  passed over for the next newest, with one warning naming it and the step used; nothing is moved
  (resuming training sets such a step aside). A given `step` that is corrupt is an error.

  Args:
    workdir: a run directory.
    read: fn(step) -> what the caller needs (e.g. the params); a `UserError` from it (e.g. a
      checkpoint that does not fit the config) propagates, never a fallback.
    step: the step asked for; None or negative = none.
    best_metric / best_mode: without `step`, first try the best step by this eval metric when the
      run kept one ("" = the latest).
    what: how messages name the run (default: `workdir`).

  Returns:
    (step, how it was chosen: "given" | "best" | "latest", `read(step)`).

  Raises:
    UserError: when `workdir` has no complete checkpoint, none at `step`, `step` is corrupt, or
      no step loads.
  """
  from jaxpretrain.checkpoint.manager import _quiet_late_write_callbacks, checkpoint_dir, require_run

  # A failed read, like a failed write, leaves tensorstore completing its other reads into orbax's
  # closed event loop: one "Event loop is closed" traceback each. The warning or error says it all.
  _quiet_late_write_callbacks()
  given = step is not None and step >= 0
  ckpt = require_run(workdir, best_metric=best_metric if not given else "", best_mode=best_mode)
  try:
    steps = ckpt.all_steps()
    best = ckpt.best_step() if best_metric and not given else None
  finally:
    ckpt.close()
  directory = checkpoint_dir(workdir)
  prefix = f"{what}: " if what else ""
  if given:
    if step not in steps:
      raise UserError(f"{what or workdir} has no checkpoint at step {step} (it has {', '.join(map(str, steps))})")
    candidates = [(step, "given")]
  else:
    candidates = [(best, "best")] if best is not None else []
    candidates += [(s, "latest") for s in reversed(steps) if s != best]
  corrupt: list[tuple[int, str]] = []
  for candidate, how in candidates:
    problem = step_problem(os.path.join(directory, str(candidate)))
    if problem is None:
      try:
        value = read(candidate)
      except UserError:
        raise
      except Exception as e:  # arrays that fail to read: truncated, missing or damaged files
        problem = first_line(e, with_type=True)
      else:
        for bad, reason in corrupt:
          warn(
            f"{prefix}checkpoint step {bad} in {directory} is incomplete or corrupt ({reason}); using step {candidate}"
          )
        return candidate, how, value
    if how == "given":
      raise UserError(f"{prefix}checkpoint step {candidate} in {directory} is incomplete or corrupt ({problem})")
    corrupt.append((candidate, problem))
  raise UserError(
    f"{prefix}no checkpoint in {directory} loads: "
    + "; ".join(f"step {bad} is incomplete or corrupt ({reason})" for bad, reason in corrupt)
  )


def resolve_step(
  workdir: str, step: int | None = None, *, best_metric: str = "", best_mode: str = "min", what: str = ""
) -> tuple[int, str]:
  """The step to read, as `read_step` picks it (past corrupt steps), without reading its arrays.

  Args:
    workdir: a run directory.
    step: the step asked for; None or negative = none.
    best_metric / best_mode: without `step`, the best step by this eval metric when the run kept
      one ("" = the latest).
    what: how messages name the run (default: `workdir`).

  Returns:
    (step, how it was chosen: "given" | "best" | "latest").

  Raises:
    UserError: as `read_step`.
  """
  chosen, how, _ = read_step(workdir, lambda _: None, step, best_metric=best_metric, best_mode=best_mode, what=what)
  return chosen, how


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
