"""`Checkpointer`: saving and restoring the steps of one run with orbax.

Layout: WORKDIR/checkpoints/<step>/{state, data, tokenizer, meta}. Saves are asynchronous by
default (orbax copies arrays to host before `save` returns, so the next step may donate the
device buffers) and atomic (orbax writes into a temporary directory and renames it when
complete, so an interrupted save never becomes a step). Restoring walks back from the latest
step past any checkpoint that fails to load, with a warning naming it.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp
from orbax.checkpoint.checkpoint_managers import preservation_policy as preservation

from jaxpretrain import files, paths
from jaxpretrain.checkpoint.restore import check_shapes, does_not_fit, flat_leaves
from jaxpretrain.errors import UserError, first_line, storage_failure, warn

ITEMS = ("state", "data", "tokenizer", "meta")
_STEP_NAME = re.compile(r"^\d+($|\.orbax-checkpoint-tmp)")  # what orbax reads, deletes or cleans up


# What a failed write looks like: the OS's OSError, tensorstore's ValueError (e.g. "Error writing
# ... No space left on device"), or a RuntimeError from orbax's background thread.
_WRITE_ERRORS = (OSError, ValueError, RuntimeError)


def _is_late_write_callback(unraisable) -> bool:
  """A tensorstore write finishing after orbax's event loop closed (as after a failed write)."""
  error = unraisable.exc_value
  return isinstance(error, RuntimeError) and str(error) == "Event loop is closed"


def _quiet_late_write_callbacks() -> None:
  """Keeps the one-line error of a failed write the only report of it.

  When one write fails, orbax closes its event loop while tensorstore still completes the other
  writes; each completion then raises "Event loop is closed" inside tensorstore's threads, which
  Python reports through `sys.unraisablehook` as a traceback per file. Those say nothing the
  error does not, so the hook drops exactly them and passes everything else on.
  """
  previous = sys.unraisablehook
  if getattr(previous, "_jaxpretrain", False):
    return

  def hook(unraisable):
    if not _is_late_write_callback(unraisable):
      previous(unraisable)

  hook._jaxpretrain = True
  sys.unraisablehook = hook


def checkpoint_dir(workdir: str) -> str:
  """WORKDIR/checkpoints, absolute (a remote workdir's URL as it is: orbax writes there itself)."""
  return paths.join(paths.absolute(workdir), "checkpoints")


def item_path(workdir: str, step: int, item: str = "state") -> str:
  """WORKDIR/checkpoints/<step>/<item>: e.g. the `state` directory orbax reads a TrainState from."""
  return paths.join(checkpoint_dir(workdir), str(step), item)


class IteratorState:
  """The data iterator state to save, captured when a batch was consumed (not when prefetched).

  Quacks like a grain iterator for grain's orbax handler, which writes one file per process.
  """

  def __init__(self, state: Any = None):
    self.state = state

  def get_state(self) -> bytes:
    return json.dumps(self.state).encode()

  def set_state(self, raw: bytes) -> None:
    self.state = json.loads(raw.decode())

  def start_prefetch(self) -> None:  # called by grain's handler after a restore
    pass


class Checkpointer:
  """Saves and restores the steps of one run.

  Args:
    workdir: the run's workdir (checkpoints go to WORKDIR/checkpoints).
    keep: how many latest steps to keep.
    async_save: write in a background thread while training continues.
    best_metric / best_mode: also keep the best step by this eval metric (min or max).
    read_only: never create, delete or clean anything.
  """

  def __init__(
    self,
    workdir: str,
    *,
    keep: int = 3,
    async_save: bool = True,
    best_metric: str = "",
    best_mode: str = "min",
    read_only: bool = False,
  ):
    self.workdir = workdir
    self.directory = checkpoint_dir(workdir)
    if paths.isdir(self.directory):  # orbax would restore through a linked step, and delete it when old
      files.refuse_links(
        [paths.join(self.directory, n) for n in paths.listdir(self.directory) if _STEP_NAME.match(n)],
        "a run's checkpoint steps",
      )
    self.best_metric, self.best_mode = best_metric, best_mode
    # Keep the `keep` latest steps, plus the best one by the eval metric when there is one.
    policies = [preservation.LatestN(n=keep)]
    if best_metric:
      policies.append(
        preservation.BestN(
          get_metric_fn=lambda metrics: metrics.get(best_metric, float("nan")),
          reverse=best_mode == "min",
          n=1,
          keep_checkpoints_without_metrics=False,
        )
      )
    options = ocp.CheckpointManagerOptions(
      enable_async_checkpointing=async_save,
      preservation_policy=preservation.AnyPreservationPolicy(policies),
      # With a best_fn orbax also writes each step's metrics to disk, so that BestN still knows
      # the best step after a restart (without it a resumed run deleted its best step).
      best_fn=(lambda metrics: metrics.get(best_metric, float("nan"))) if best_metric else None,
      best_mode=best_mode,
      create=not read_only,
      read_only=read_only,
      cleanup_tmp_directories=not read_only,
    )
    handlers = {
      "state": ocp.StandardCheckpointHandler(),
      "data": grain.checkpoint.CheckpointHandler(),
      "tokenizer": ocp.JsonCheckpointHandler(),
      "meta": ocp.JsonCheckpointHandler(),
    }
    self.manager = ocp.CheckpointManager(self.directory, options=options, item_handlers=handlers)
    self.read_only = read_only
    self._writing_step: int | None = None  # the asynchronous save in flight, for error messages
    if not read_only:
      _quiet_late_write_callbacks()

  def best_step(self) -> int | None:
    """The step whose saved eval metric `best_metric` is best (`best_mode`), or None.

    Computed from the eval metrics saved in every kept step's `meta` item: orbax's own
    `best_step()` only tracks a best step when the metric is its sort key (`best_fn`), not when it
    is (as here) one preservation policy of several, and then answers with the latest step. Ties
    go to the later step; steps saved without the metric (or with a non-finite value) are not candidates.
    """
    if not self.best_metric:
      return None
    scored = []
    for step in self.all_steps():
      try:  # the metrics the loop saved with the step (orbax keeps none on disk without a best_fn)
        raw = paths.read_bytes(paths.join(self.directory, str(step), "meta", "metadata"))
        value = (json.loads(raw.decode("utf-8")).get("metrics") or {}).get(self.best_metric)
      except (OSError, ValueError):  # an unreadable step: not a candidate (readers fall back past it)
        continue
      if isinstance(value, (int, float)) and math.isfinite(value):
        scored.append((value if self.best_mode == "min" else -value, -step))
    return -min(scored)[1] if scored else None

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def all_steps(self) -> list[int]:
    return sorted(self.manager.all_steps())

  def save(
    self,
    step: int,
    state_arrays: dict,
    *,
    data_state: Any = None,
    tokenizer_files: dict | None = None,
    meta: dict | None = None,
    metrics: dict | None = None,
  ) -> None:
    """Starts saving `step`; returns once arrays are on the host (the write may continue).

    Errors of an earlier asynchronous write surface here (or in `wait`).

    Args:
      step: the training step the state is at.
      state_arrays: `TrainState.arrays()`.
      data_state: this process's data iterator state (JSON-able) after the last consumed batch.
      tokenizer_files: {file name: text} of the run's tokenizer directory.
      meta: run metadata (JSON-able): config, version, mesh, wall time, last metrics.
      metrics: eval metrics used to pick the best step.
    """
    args = ocp.args.Composite(
      state=ocp.args.StandardSave(state_arrays),
      data=grain.checkpoint.CheckpointSave(IteratorState(data_state)),
      tokenizer=ocp.args.JsonSave(tokenizer_files or {}),
      meta=ocp.args.JsonSave(meta or {}),
    )
    self.wait()  # an earlier asynchronous write's failure is reported as that step's, not this one's
    try:
      self.manager.save(step, args=args, metrics=metrics, force=True)
    except _WRITE_ERRORS as e:
      raise self._write_failed(step, e) from None
    self._writing_step = step

  def restore(self, step: int, abstract_state_arrays: dict) -> tuple[dict, Any, dict]:
    """Restores `step` onto the shardings of `abstract_state_arrays` (ShapeDtypeStructs).

    Raises:
      UserError: when the saved arrays do not fit the config (names the first mismatching leaf).

    Returns:
      (state arrays, this process's data iterator state or None, meta).
    """
    self.check_matches(step, abstract_state_arrays)
    restored = self.manager.restore(
      step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state_arrays), meta=ocp.args.JsonRestore())
    )
    return restored["state"], self.restore_data_state(step), restored["meta"]

  def restore_data_state(self, step: int):
    """This process's data iterator state at `step`, or None (with a warning) when it was saved by
    a different number of processes: then the data order starts over, the model state does not."""
    try:
      restored = self.manager.restore(
        step, args=ocp.args.Composite(data=grain.checkpoint.CheckpointRestore(IteratorState()))
      )
      return restored["data"].state
    except (ValueError, FileNotFoundError, KeyError) as e:
      warn(
        f"step {step} has no data iterator state for {jax.process_count()} process(es) "
        f"({first_line(e, with_type=True)}); the data order starts from the beginning"
      )
      return None

  def check_matches(self, step: int, abstract_state_arrays: dict) -> None:
    """Compares the saved arrays' names and shapes with the restore target.

    Raises:
      UserError: naming the first leaf that is missing, extra or of another shape.
    """
    check_shapes(
      flat_leaves(self.manager.item_metadata(step)["state"]),
      flat_leaves(abstract_state_arrays),
      does_not_fit(step, self.directory),
    )

  def restore_latest(self, abstract_state_arrays: dict):
    """Restores the newest step that loads; a corrupt or partial step is reported and set aside.

    A step whose arrays do not fit the config is an error, never a fallback: the config, not the
    checkpoint, is what is wrong then.

    Returns:
      (step, state arrays, data state, meta), or None when there is no checkpoint.
    """
    for step in reversed(self.all_steps()):
      try:
        self.manager.item_metadata(step)["state"]
      except Exception as e:  # unreadable metadata: the step is not usable
        self._report_corrupt(step, e)
        continue
      self.check_matches(step, abstract_state_arrays)
      try:
        return (step, *self.restore(step, abstract_state_arrays))
      except UserError:
        raise
      except Exception as e:  # arrays that fail to read: truncated or missing files
        self._report_corrupt(step, e)
    return None

  def read_meta(self, step: int) -> dict:
    """The `meta` item of `step` (run metadata: config, fingerprint, version, ...); {} when unreadable."""
    try:
      return dict(self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"] or {})
    except Exception:  # a corrupt or partial step: `restore_latest` reports it
      return {}

  def _report_corrupt(self, step: int, error: Exception) -> None:
    warn(
      f"checkpoint step {step} in {self.directory} is incomplete or corrupt ({first_line(error, with_type=True)}); "
      f"using the previous step"
    )
    self._set_aside(step)

  def _set_aside(self, step: int) -> None:
    """Renames a broken step to `<step>.corrupt` (or `.corrupt-2`, ...: an earlier one is kept) so
    it is neither latest nor overwritten."""
    if self.read_only or jax.process_index() != 0:
      return
    path = paths.join(self.directory, str(step))
    target, n = path + ".corrupt", 1
    while os.path.lexists(target) if not paths.is_remote(target) else paths.exists(target):
      n += 1
      target = f"{path}.corrupt-{n}"
    if paths.is_remote(path):
      paths.epath(path).rename(target)  # an object store copies and deletes each object
    else:
      os.rename(path, target)
    self.manager.reload()

  def item_path(self, step: int, item: str = "state") -> str:
    """WORKDIR/checkpoints/<step>/<item>."""
    return item_path(self.workdir, step, item)

  def wait(self) -> None:
    """Blocks until pending asynchronous saves are on disk; raises a failed write as UserError."""
    step, self._writing_step = self._writing_step, None
    try:
      self.manager.wait_until_finished()
    except _WRITE_ERRORS as e:
      raise self._write_failed(step, e) from None

  def _write_failed(self, step: int | None, error: Exception) -> UserError:
    """One line naming the step whose write failed, the OS cause, and the steps still intact."""
    cause = storage_failure(error) or first_line(error, with_type=True)
    where = f"saving step {step} to {paths.join(self.directory, str(step))}" if step is not None else "saving"
    kept = [s for s in self.all_steps() if step is None or s < step]
    if not kept:
      intact = "; no earlier step was saved"
    else:
      intact = f"; step {kept[0]} is intact" if len(kept) == 1 else f"; steps {', '.join(map(str, kept))} are intact"
    return UserError(f"checkpoint write failed ({where}): {cause}{intact}")

  def close(self, raise_errors: bool = True) -> None:
    """Waits for pending saves and releases the manager; `raise_errors=False` while another
    error is already propagating (the first error is the one to report)."""
    try:
      self.wait()
    except UserError:
      if raise_errors:
        raise
    finally:
      self.manager.close()


def tokenizer_files(directory: str) -> dict:
  """{name: text} of a tokenizer directory's files (saved inside each checkpoint)."""
  files = {}
  for name in sorted(os.listdir(directory)):
    path = os.path.join(directory, name)
    if os.path.isfile(path):
      with open(path, encoding="utf-8") as f:
        files[name] = f.read()
  return files


def abstract_arrays(state_arrays: Any, shardings: Any) -> Any:
  """ShapeDtypeStructs with shardings: the restore target for `Checkpointer.restore`."""
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), state_arrays, shardings)


def latest_meta(workdir: str) -> tuple[int, dict] | None:
  """The newest step of WORKDIR whose metadata reads, and that metadata, without writing anything.

  What a resume will most likely restore, known before the data is built (so a changed data source
  is reported before it is prepared); `Checkpointer.restore_latest` decides what is restored.

  Args:
    workdir: the run directory.

  Returns:
    (step, meta), or None when WORKDIR has no checkpoint.
  """
  if not paths.isdir(checkpoint_dir(workdir)):
    return None
  ckpt = Checkpointer(workdir, read_only=True)
  try:
    for step in reversed(ckpt.all_steps()):
      meta = ckpt.read_meta(step)
      if meta:
        return step, meta
    return None
  finally:
    ckpt.close(raise_errors=False)


def require_run(workdir: str, *, best_metric: str = "", best_mode: str = "min") -> Checkpointer:
  """A read-only Checkpointer of an existing run, or a UserError when `workdir` has no checkpoint.

  Args:
    workdir: the run directory.
    best_metric / best_mode: as for `Checkpointer`, to ask it for the best step.

  Returns:
    The Checkpointer (the caller closes it).
  """
  if not paths.isdir(checkpoint_dir(workdir)):
    raise UserError(f"no checkpoints in {workdir} (expected {checkpoint_dir(workdir)})")
  ckpt = Checkpointer(workdir, read_only=True, best_metric=best_metric, best_mode=best_mode)
  if ckpt.latest_step() is None:
    ckpt.close()
    raise UserError(f"no complete checkpoint in {checkpoint_dir(workdir)}")
  return ckpt
