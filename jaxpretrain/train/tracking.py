"""Experiment tracking beside metrics.jsonl: Weights & Biases with `tracking.wandb=true`.

Process 0 opens one W&B run (`tracking.project`, `tracking.entity`, `tracking.name`; "" = W&B's
defaults) with the resolved config, and logs every row `MetricsWriter` writes to metrics.jsonl, at
the same step, under TensorBoard's names (`train/loss`, `eval/accuracy`, ...). The run id is kept
in WORKDIR/wandb_run_id, so a resumed run continues the same W&B run. W&B's own files go to
WORKDIR/wandb (or `$WANDB_DIR`); `WANDB_MODE=offline` keeps everything there, for `wandb sync`
later. Steps a resumed run logs again (those after its checkpoint) keep W&B's first row: W&B does
not rewrite a step it already has.

`wandb` is an optional extra: `pip install "jaxpretrain[wandb]"`.
"""

from __future__ import annotations

import os
import secrets
import string
import sys

import jax

from jaxpretrain import config as config_lib
from jaxpretrain import paths
from jaxpretrain.errors import UserError, first_line

RUN_ID_FILE = "wandb_run_id"


def check(config) -> None:
  """Before anything is written: `tracking.wandb=true` needs the `wandb` package (checked on every
  process, so that all of them stop alike, although only process 0 logs)."""
  if not config.tracking.wandb:
    return
  try:
    import wandb  # noqa: F401
  except ImportError:
    raise UserError(
      'tracking.wandb=true needs the wandb package: pip install "jaxpretrain[wandb]" (or set tracking.wandb=false)'
    ) from None


class WandbSink:
  """One W&B run that receives the rows of metrics.jsonl (see the module docstring)."""

  def __init__(self, run):
    self.run = run

  def log(self, step: int, metrics: dict, split: str | None = None) -> None:
    """Logs a metrics.jsonl row: its numbers, as `train/KEY` or `SPLIT/KEY`, at `step`."""
    prefix = f"{split or 'train'}/"
    numbers = {prefix + k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    self.run.log(numbers, step=int(step))

  def close(self) -> None:
    """Ends the W&B run: failed (exit code 1) while an exception is on its way out, else finished."""
    self.run.finish(exit_code=1 if sys.exc_info()[0] is not None else None)


def open_sinks(config, workdir: str) -> list:
  """The trackers the config asks for, opened on process 0 (none elsewhere, and none by default).

  Args:
    config: the run config (`tracking.*`; the whole config is logged).
    workdir: the run directory (WORKDIR/wandb_run_id names the W&B run across resumes).

  Returns:
    A list of sinks with `log(step, metrics, split)` and `close()`.
  """
  if not config.tracking.wandb or jax.process_index() != 0:
    return []
  check(config)
  import wandb

  id_path = paths.join(workdir, RUN_ID_FILE)
  run_id = paths.read_bytes(id_path).decode().strip() if paths.exists(id_path) else ""
  if not run_id:
    run_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))  # as W&B's ids
    paths.write_text(id_path, run_id + "\n")
  if os.environ.get("WANDB_DIR"):
    local_dir = None  # the user's choice, read by wandb itself
  else:
    local_dir = paths.local_cache(workdir) if paths.is_remote(workdir) else workdir
    os.makedirs(local_dir, exist_ok=True)
  try:
    run = wandb.init(
      project=config.tracking.project or None,
      entity=config.tracking.entity or None,
      name=config.tracking.name or None,
      id=run_id,
      resume="allow",
      config=config_lib.to_dict(config),
      dir=local_dir,
    )
  except Exception as e:  # no network, no login, a bad entity: wandb raises its own error types
    raise UserError(
      f"tracking.wandb: could not start W&B run {run_id}: {first_line(e)} "
      "(WANDB_MODE=offline logs locally; `wandb sync` uploads later)"
    ) from None
  return [WandbSink(run)]
