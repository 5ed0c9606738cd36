"""Orbax checkpoints of a run: the TrainState, the data iterator state, and run metadata.

Layout: WORKDIR/checkpoints/<step>/{state, data, meta}. Saves are asynchronous (orbax's
CheckpointManager) and atomic (orbax writes to a temporary directory and renames it when the
save completes, so an interrupted save never becomes the latest step).
"""
from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from jaxpretrain.errors import UserError


def checkpoint_dir(workdir: str) -> str:
  return os.path.join(os.path.abspath(workdir), "checkpoints")


class Checkpointer:
  """Saves and restores steps of one run.

  Args:
    workdir: the run's workdir (checkpoints go to WORKDIR/checkpoints).
    keep: how many latest steps to keep.
    async_save: write in a background thread while training continues.
    best_metric / best_mode: also keep the best step by this metric (min or max), if given.
  """

  def __init__(self, workdir: str, *, keep: int = 3, async_save: bool = True, best_metric: str = "",
               best_mode: str = "min", read_only: bool = False):
    self.directory = checkpoint_dir(workdir)
    best_fn = None
    if best_metric:
      best_fn = lambda metrics: metrics[best_metric]
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, enable_async_checkpointing=async_save, best_fn=best_fn, best_mode=best_mode,
        keep_checkpoints_without_metrics=True, create=not read_only, read_only=read_only,
        cleanup_tmp_directories=True)
    self.manager = ocp.CheckpointManager(self.directory, options=options,
                                         item_names=("state", "data", "meta"))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self.manager.all_steps())

  def save(self, step: int, state_arrays: dict, *, data_state: dict | None = None, meta: dict | None = None,
           metrics: dict | None = None, force: bool = True) -> None:
    """Starts saving `step` (returns before the write finishes when async).

    Args:
      step: the training step the state is at.
      state_arrays: `TrainState.arrays()`.
      data_state: the data iterator's state (JSON-able), per process.
      meta: run metadata (JSON-able): config, versions, mesh, wall time.
      metrics: last metrics (used to pick the best step).
    """
    args = ocp.args.Composite(state=ocp.args.StandardSave(state_arrays),
                              data=ocp.args.JsonSave(data_state or {}),
                              meta=ocp.args.JsonSave(meta or {}))
    self.manager.save(step, args=args, metrics=metrics, force=force)

  def restore(self, step: int, abstract_state_arrays: dict) -> tuple[dict, dict, dict]:
    """Restores `step` onto the shardings of `abstract_state_arrays` (ShapeDtypeStructs).

    Returns:
      (state arrays, data iterator state, meta).
    """
    restored = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state_arrays), data=ocp.args.JsonRestore(),
        meta=ocp.args.JsonRestore()))
    return restored["state"], restored["data"], restored["meta"]

  def restore_meta(self, step: int) -> dict:
    return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

  def item_path(self, step: int, item: str = "state") -> str:
    return os.path.join(self.directory, str(step), item)

  def wait(self) -> None:
    """Blocks until pending asynchronous saves are on disk (raises their errors)."""
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()


def abstract_arrays(state_arrays: Any, shardings: Any) -> Any:
  """ShapeDtypeStructs with shardings: the restore target for `Checkpointer.restore`."""
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), state_arrays, shardings)


def require_run(workdir: str) -> "Checkpointer":
  """The Checkpointer of an existing run, or a UserError when `workdir` has no checkpoint."""
  if not os.path.isdir(checkpoint_dir(workdir)):
    raise UserError(f"no checkpoints in {workdir} (expected {checkpoint_dir(workdir)})")
  ckpt = Checkpointer(workdir, read_only=True)
  if ckpt.latest_step() is None:
    raise UserError(f"no complete checkpoint in {checkpoint_dir(workdir)}")
  return ckpt
