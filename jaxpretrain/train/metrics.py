"""Run outputs: `metrics.jsonl` (one JSON object per logged step), TensorBoard events, progress bar.

Only process 0 writes; other processes get a writer that does nothing, so callers never branch.
On a remote workdir (`gs://...`, which has no append) the writer appends to a local mirror of
metrics.jsonl and tb/ and copies them up whole at most every `REMOTE_SYNC_SECS` and at `close`: a
crash loses at most that much of the log, and a resume logs the steps after its checkpoint again.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
import time

import jax

from jaxpretrain import files, paths
from jaxpretrain.errors import storage_errors

REMOTE_SYNC_SECS = 30.0  # a remote metrics.jsonl is rewritten whole: not at every row of a fast run


class MetricsWriter:
  """Appends rows to WORKDIR/metrics.jsonl and WORKDIR/tb, and drives a tqdm progress bar."""

  def __init__(
    self,
    workdir: str,
    *,
    total_steps: int,
    initial_step: int = 0,
    progress: bool = True,
    description: str = "train",
    keep_until: int | None = None,
    sinks: tuple = (),
  ):
    """Opens the outputs (process 0).

    Args:
      workdir: the run directory.
      total_steps: the progress bar's length.
      initial_step: where the progress bar starts.
      progress: show the progress bar.
      description: the progress bar's label.
      keep_until: drop the rows of metrics.jsonl after this step first (see `truncate_metrics`):
        a resumed run logs those steps again. None keeps every row.
      sinks: trackers that receive every row too (`tracking.open_sinks`), closed with the writer.
    """
    self.enabled = jax.process_index() == 0
    self._sinks = list(sinks)
    self.workdir = workdir
    self.path = paths.join(workdir, "metrics.jsonl")
    self._tb = None
    self._bar = None
    if not self.enabled:
      return
    paths.makedirs(workdir)
    if keep_until is not None:
      truncate_metrics(workdir, keep_until)
    # An object store cannot append: rows go to a local mirror that `_sync` copies up.
    self._remote = paths.is_remote(workdir)
    self._local = tempfile.mkdtemp(prefix="jaxpretrain-metrics-") if self._remote else workdir
    if self._remote and paths.isfile(self.path):
      with open(os.path.join(self._local, "metrics.jsonl"), "wb") as f:
        f.write(paths.read_bytes(self.path))
    self._synced = time.monotonic()
    self._file = open(os.path.join(self._local, "metrics.jsonl"), "a")
    try:
      from tensorboardX import SummaryWriter  # TensorBoard events without TensorFlow

      self._tb = SummaryWriter(os.path.join(self._local, "tb"), flush_secs=10)
    except ImportError:  # pragma: no cover - tensorboardX is a core dependency
      self._tb = None
    if progress:
      from tqdm import tqdm

      self._bar = tqdm(
        total=total_steps,
        initial=initial_step,
        desc=description,
        unit="step",
        file=sys.stderr,
        dynamic_ncols=True,
        leave=True,
      )
    self._start = time.time()

  def write(self, step: int, metrics: dict, split: str | None = None) -> None:
    """Writes one row: `{"step": step, **metrics}` plus `"split"` for evaluation rows."""
    if not self.enabled:
      return
    row = {"step": int(step)}
    if split:
      row["split"] = split
    for key, value in metrics.items():
      value = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
      row[key] = None if isinstance(value, float) and not math.isfinite(value) else value
    with storage_errors(f"logging step {step} to {self.path}"):
      self._file.write(json.dumps(row) + "\n")
      self._file.flush()
      if self._tb is not None:
        prefix = f"{split}/" if split else "train/"
        for key, value in metrics.items():
          if isinstance(value, (int, float)) and not isinstance(value, bool):
            self._tb.add_scalar(prefix + key, value, int(step))
      self._sync()
    for sink in self._sinks:
      sink.log(step, metrics, split)

  def _sync(self, force: bool = False) -> None:
    """Copies the local mirror up to a remote workdir (whole files), when due or `force`d."""
    if not self._remote or (not force and time.monotonic() - self._synced < REMOTE_SYNC_SECS):
      return
    if self._tb is not None:
      self._tb.flush()
    paths.upload_dir(self._local, self.workdir)
    self._synced = time.monotonic()

  def progress(self, step: int, postfix: dict | None = None) -> None:
    """Moves the progress bar to `step`, showing `postfix` (loss, tokens/s, data wait)."""
    if self._bar is None:
      return
    self._bar.update(step - self._bar.n)
    if postfix:
      self._bar.set_postfix({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in postfix.items()}, refresh=False)

  def close(self) -> None:
    for sink in self._sinks:
      sink.close()
    if not self.enabled:
      return
    if self._bar is not None:
      self._bar.close()
    with storage_errors(f"closing {self.path}"):
      if self._tb is not None:
        self._tb.close()
      self._file.close()
      self._sync(force=True)
    if self._remote:
      shutil.rmtree(self._local, ignore_errors=True)


def truncate_metrics(workdir: str, step: int) -> int:
  """Keeps the rows of WORKDIR/metrics.jsonl with `step` <= STEP (atomically), so that a run resumed
  from checkpoint STEP logs each later step once, not once per attempt. A torn last line (a crash
  mid-write) goes too. TensorBoard events are left as they are.

  Args:
    workdir: the run directory.
    step: the step the run resumes from (0 for a run that starts over).

  Returns:
    How many lines were dropped.
  """
  path = paths.join(workdir, "metrics.jsonl")
  if not paths.exists(path):
    return 0
  text = paths.read_bytes(path).decode("utf-8", "replace")  # a line torn mid-character is dropped below
  lines = [line for line in text.splitlines(keepends=True) if line.strip()]
  kept = []
  for line in lines:
    try:
      row = json.loads(line)
    except json.JSONDecodeError:
      continue
    if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= step:
      kept.append(line if line.endswith("\n") else line + "\n")
  dropped = len(lines) - len(kept)
  if dropped:
    paths.write_text(path, "".join(kept))
  return dropped


def read_metrics(workdir: str) -> list[dict]:
  """All rows of WORKDIR/metrics.jsonl; a last line cut short by a crash is left out (a resume cuts
  it off the file); any other bad line is a one-line `UserError` naming the file and line."""
  path = paths.join(workdir, "metrics.jsonl")
  if not paths.exists(path):
    return []
  return files.read_jsonl(path, "run file", allow_cut_last_line=True)
