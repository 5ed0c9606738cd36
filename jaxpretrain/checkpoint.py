"""Orbax checkpoints of a run: TrainState, every process's data iterator state, tokenizer, metadata.

Layout: WORKDIR/checkpoints/<step>/{state, data, tokenizer, meta}. Saves are asynchronous by
default (orbax copies arrays to host before `save` returns, so the next step may donate the
device buffers) and atomic (orbax writes into a temporary directory and renames it when
complete, so an interrupted save never becomes a step). Restoring walks back from the latest
step past any checkpoint that fails to load, with a warning naming it.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp
from orbax.checkpoint.checkpoint_managers import preservation_policy as preservation

from jaxpretrain.errors import UserError, warn

ITEMS = ("state", "data", "tokenizer", "meta")


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


def _first_line(error: Exception) -> str:
  text = str(error).strip().splitlines()
  return f"{type(error).__name__}: {text[0][:300] if text else ''}"


def _leaf_name(path) -> str:
  """'params/encoder/layer_0/...' whatever container types (dict, tuple, namedtuple) the path crosses."""
  parts = []
  for key in path:
    for attr in ("key", "idx", "name"):
      if hasattr(key, attr):
        parts.append(str(getattr(key, attr)))
        break
  return "/".join(parts)


def checkpoint_dir(workdir: str) -> str:
  return os.path.join(os.path.abspath(workdir), "checkpoints")


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

  def __init__(self, workdir: str, *, keep: int = 3, async_save: bool = True, best_metric: str = "",
               best_mode: str = "min", read_only: bool = False):
    self.directory = checkpoint_dir(workdir)
    # Keep the `keep` latest steps, plus the best one by the eval metric when there is one.
    policies = [preservation.LatestN(n=keep)]
    if best_metric:
      policies.append(preservation.BestN(
          get_metric_fn=lambda metrics: metrics.get(best_metric, float("nan")), reverse=best_mode == "min",
          n=1, keep_checkpoints_without_metrics=False))
    options = ocp.CheckpointManagerOptions(
        enable_async_checkpointing=async_save, preservation_policy=preservation.AnyPreservationPolicy(policies),
        create=not read_only, read_only=read_only, cleanup_tmp_directories=not read_only)
    handlers = {"state": ocp.StandardCheckpointHandler(), "data": grain.checkpoint.CheckpointHandler(),
                "tokenizer": ocp.JsonCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()}
    self.manager = ocp.CheckpointManager(self.directory, options=options, item_handlers=handlers)
    self.read_only = read_only
    if not read_only:
      _quiet_late_write_callbacks()

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def all_steps(self) -> list[int]:
    return sorted(self.manager.all_steps())

  def save(self, step: int, state_arrays: dict, *, data_state: Any = None, tokenizer_files: dict | None = None,
           meta: dict | None = None, metrics: dict | None = None) -> None:
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
        state=ocp.args.StandardSave(state_arrays), data=grain.checkpoint.CheckpointSave(IteratorState(data_state)),
        tokenizer=ocp.args.JsonSave(tokenizer_files or {}), meta=ocp.args.JsonSave(meta or {}))
    try:
      self.manager.save(step, args=args, metrics=metrics, force=True)
    except _WRITE_ERRORS as e:  # includes a failed earlier asynchronous write
      raise UserError(f"checkpoint write failed (saving step {step}): {_first_line(e)}") from None

  def restore(self, step: int, abstract_state_arrays: dict) -> tuple[dict, Any, dict]:
    """Restores `step` onto the shardings of `abstract_state_arrays` (ShapeDtypeStructs).

    Raises:
      UserError: when the saved arrays do not fit the config (names the first mismatching leaf).

    Returns:
      (state arrays, this process's data iterator state or None, meta).
    """
    self.check_matches(step, abstract_state_arrays)
    restored = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state_arrays), meta=ocp.args.JsonRestore()))
    return restored["state"], self.restore_data_state(step), restored["meta"]

  def restore_data_state(self, step: int):
    """This process's data iterator state at `step`, or None (with a warning) when it was saved by
    a different number of processes: then the data order starts over, the model state does not."""
    try:
      restored = self.manager.restore(step, args=ocp.args.Composite(
          data=grain.checkpoint.CheckpointRestore(IteratorState())))
      return restored["data"].state
    except (ValueError, FileNotFoundError, KeyError) as e:
      warn(f"step {step} has no data iterator state for {jax.process_count()} process(es) "
            f"({_first_line(e)}); the data order starts from the beginning")
      return None

  def check_matches(self, step: int, abstract_state_arrays: dict) -> None:
    """Compares the saved arrays' names and shapes with the restore target.

    Raises:
      UserError: naming the first leaf that is missing, extra or of another shape.
    """
    saved = {_leaf_name(path): tuple(leaf.shape)
             for path, leaf in jax.tree_util.tree_leaves_with_path(self.manager.item_metadata(step)["state"])}
    wanted = {_leaf_name(path): tuple(leaf.shape)
              for path, leaf in jax.tree_util.tree_leaves_with_path(abstract_state_arrays)}
    for name in sorted(set(saved) | set(wanted), key=lambda n: (not n.startswith("params"), n)):
      if saved.get(name) != wanted.get(name):
        describe_shape = lambda shape: "absent" if shape is None else f"shape {shape}"
        raise UserError(f"checkpoint step {step} in {self.directory} does not fit this config: {name} is "
                        f"{describe_shape(saved.get(name))} there but {describe_shape(wanted.get(name))} here")

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

  def _report_corrupt(self, step: int, error: Exception) -> None:
    warn(f"checkpoint step {step} in {self.directory} is incomplete or corrupt ({_first_line(error)}); "
          f"using the previous step")
    self._set_aside(step)

  def _set_aside(self, step: int) -> None:
    """Renames a broken step to `<step>.corrupt` so it is neither latest nor overwritten."""
    if self.read_only or jax.process_index() != 0:
      return
    path = os.path.join(self.directory, str(step))
    target = path + ".corrupt"
    if os.path.exists(target):
      shutil.rmtree(target)
    os.replace(path, target)
    self.manager.reload()

  def restore_meta(self, step: int) -> dict:
    return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

  def item_path(self, step: int, item: str = "state") -> str:
    return os.path.join(self.directory, str(step), item)

  def wait(self) -> None:
    """Blocks until pending asynchronous saves are on disk; raises a failed write as UserError."""
    try:
      self.manager.wait_until_finished()
    except _WRITE_ERRORS as e:
      raise UserError(f"checkpoint write failed: {_first_line(e)}") from None

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


def require_run(workdir: str) -> "Checkpointer":
  """The Checkpointer of an existing run, or a UserError when `workdir` has no checkpoint."""
  if not os.path.isdir(checkpoint_dir(workdir)):
    raise UserError(f"no checkpoints in {workdir} (expected {checkpoint_dir(workdir)})")
  ckpt = Checkpointer(workdir, read_only=True)
  if ckpt.latest_step() is None:
    raise UserError(f"no complete checkpoint in {checkpoint_dir(workdir)}")
  return ckpt


def describe(workdir: str) -> list[dict]:
  """One row per step directory: step, complete, size in bytes, metrics (for `jaxpretrain checkpoints`)."""
  root = checkpoint_dir(workdir)
  if not os.path.isdir(root):
    raise UserError(f"no checkpoints in {workdir} (expected {root})")
  rows = []
  for name in os.listdir(root):
    path = os.path.join(root, name)
    if not os.path.isdir(path):
      continue
    step_text = name.split(".")[0]
    if not step_text.isdigit():
      continue
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
    complete = (name == step_text and os.path.exists(os.path.join(path, "_CHECKPOINT_METADATA"))
                and all(os.path.isdir(os.path.join(path, item)) for item in ITEMS))
    metrics, wall_time = {}, None
    meta_file = os.path.join(path, "meta", "metadata")
    if complete and os.path.exists(meta_file):
      try:
        with open(meta_file) as f:
          meta = json.load(f)
        metrics, wall_time = meta.get("metrics", {}), meta.get("time")
      except (OSError, ValueError):
        complete = False
    rows.append({"step": int(step_text), "complete": complete, "bytes": size, "metrics": metrics,
                 "time": wall_time, "path": path,
                 "state": "complete" if complete else ("corrupt" if name.endswith(".corrupt") else "incomplete")})
  return sorted(rows, key=lambda r: (r["step"], r["path"]))
