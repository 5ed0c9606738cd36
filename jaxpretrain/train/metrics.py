"""Run outputs: `metrics.jsonl` (one JSON object per logged step), TensorBoard events, progress bar.

Only process 0 writes; other processes get a writer that does nothing, so callers never branch.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time

import jax

from jaxpretrain import files
from jaxpretrain.errors import storage_errors


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
    """
    self.enabled = jax.process_index() == 0
    self.path = os.path.join(workdir, "metrics.jsonl")
    self._tb = None
    self._bar = None
    if not self.enabled:
      return
    os.makedirs(workdir, exist_ok=True)
    if keep_until is not None:
      truncate_metrics(workdir, keep_until)
    self._file = open(self.path, "a")
    try:
      from tensorboardX import SummaryWriter  # TensorBoard events without TensorFlow

      self._tb = SummaryWriter(os.path.join(workdir, "tb"), flush_secs=10)
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

  def progress(self, step: int, postfix: dict | None = None) -> None:
    """Moves the progress bar to `step`, showing `postfix` (loss, tokens/s, data wait)."""
    if self._bar is None:
      return
    self._bar.update(step - self._bar.n)
    if postfix:
      self._bar.set_postfix({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in postfix.items()}, refresh=False)

  def close(self) -> None:
    if not self.enabled:
      return
    if self._bar is not None:
      self._bar.close()
    with storage_errors(f"closing {self.path}"):
      if self._tb is not None:
        self._tb.close()
      self._file.close()


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
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return 0
  with open(path) as f:
    lines = [line for line in f if line.strip()]
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
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
      f.writelines(kept)
    os.replace(tmp, path)
  return dropped


def read_metrics(workdir: str) -> list[dict]:
  """All rows of WORKDIR/metrics.jsonl; a last line cut short by a crash is left out (a resume cuts
  it off the file); any other bad line is a one-line `UserError` naming the file and line."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  return files.read_jsonl(path, "run file", allow_cut_last_line=True)
