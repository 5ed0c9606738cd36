"""PNG plots of a run (from WORKDIR/metrics.jsonl) and of the demo's accuracy-vs-labels results.

`jaxpretrain plot --workdir=DIR` writes DIR/plots/{loss,learning_rate,throughput,eval}.png: the
train (and eval) loss, the learning-rate schedule, tokens/s, and every other eval metric, against
the step. Rendering uses matplotlib's Agg backend: no display needed.
"""

from __future__ import annotations

import math
import os

from jaxpretrain.errors import UserError
from jaxpretrain.train.metrics import read_metrics


def _pyplot():
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  return plt


def series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
  """(steps, values) of the rows that logged a finite `key`."""
  points = [
    (r["step"], r[key])
    for r in rows
    if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool) and math.isfinite(r[key])
  ]
  return [p[0] for p in points], [p[1] for p in points]


def _save(fig, path: str) -> str:
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  _pyplot().close(fig)
  return path


def line_plot(curves: dict[str, tuple[list, list]], path: str, *, title: str, ylabel: str, logy: bool = False) -> str:
  """One PNG with a line per named (x, y) curve against the step.

  Args:
    curves: label -> (steps, values); empty curves are skipped.
    path: the PNG to write.
    title, ylabel: axis text.
    logy: log-scale y axis.

  Returns:
    `path`.
  """
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6.4, 4.0))
  for label, (xs, ys) in curves.items():
    if xs:
      ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, label=label)
  ax.set_xlabel("step")
  ax.set_ylabel(ylabel)
  ax.set_title(title)
  if logy:
    ax.set_yscale("log")
  ax.grid(alpha=0.3)
  if len(curves) > 1:
    ax.legend()
  return _save(fig, path)


def loss_plot(rows: list[dict], path: str, title: str = "loss") -> str:
  """Train and eval loss of metrics.jsonl rows against the step, as a PNG at `path`."""
  train = [r for r in rows if "split" not in r]
  evals = [r for r in rows if r.get("split") == "eval"]
  return line_plot({"train": series(train, "loss"), "eval": series(evals, "loss")}, path, title=title, ylabel="loss")


def plot_run(workdir: str, out_dir: str | None = None) -> list[str]:
  """Loss, learning rate, throughput and eval-metric PNGs of a run.

  Args:
    workdir: a run directory with metrics.jsonl.
    out_dir: where to write (default WORKDIR/plots).

  Returns:
    The paths written (a plot whose metric the run never logged is skipped).
  """
  rows = read_metrics(workdir)
  if not rows:
    raise UserError(f"no metrics in {workdir} (expected {os.path.join(workdir, 'metrics.jsonl')})")
  out_dir = out_dir or os.path.join(workdir, "plots")
  os.makedirs(out_dir, exist_ok=True)
  train = [r for r in rows if "split" not in r]
  evals = [r for r in rows if r.get("split") == "eval"]
  written = []
  if any(series(train, "loss")[0] + series(evals, "loss")[0]):
    written.append(loss_plot(rows, os.path.join(out_dir, "loss.png")))
  for key, name, label in (
    ("learning_rate", "learning_rate.png", "learning rate"),
    ("tokens_per_s", "throughput.png", "tokens / s"),
  ):
    curve = series(train, key)
    if curve[0]:
      written.append(line_plot({label: curve}, os.path.join(out_dir, name), title=label, ylabel=label))
  metrics = sorted({k for r in evals for k in r if k not in ("step", "split", "loss")})
  eval_curves = {k: series(evals, k) for k in metrics}
  if any(xs for xs, _ in eval_curves.values()):
    written.append(line_plot(eval_curves, os.path.join(out_dir, "eval.png"), title="evaluation", ylabel="metric"))
  return written


def accuracy_vs_labels(result: dict, path: str) -> str:
  """The demo's test accuracy (mean ± std over seeds) against the label budget, one line per method.

  Args:
    result: the demo.json dict (`budgets`, `accuracy`, `std`, `seeds`).
    path: the PNG to write.

  Returns:
    `path`.
  """
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6.4, 4.2))
  budgets = result["budgets"]
  for method, means in result["accuracy"].items():
    ys = [means[str(b)] for b in budgets]
    errors = [result["std"][method][str(b)] for b in budgets]
    ax.errorbar(budgets, ys, yerr=errors, marker="o", capsize=3, label=method)
  ax.set_xscale("log", base=2)
  ax.set_xticks(budgets, [str(b) for b in budgets])
  ax.set_xlabel("labeled training examples")
  ax.set_ylabel(f"test accuracy (mean ± std, {result['seeds']} seeds)")
  ax.set_title("accuracy vs labels")
  ax.grid(alpha=0.3)
  ax.legend()
  return _save(fig, path)
