"""PNG plots of a run (from WORKDIR/metrics.jsonl), of a confusion matrix, and of the demo's results.

`jaxpretrain plot --workdir=DIR` writes DIR/plots/{loss,learning_rate,throughput,eval}.png: the
train (and eval) loss, the learning-rate schedule, tokens/s, and every other eval metric (one panel
each, its y axis named after it), against the step. Every plot labels its axes and has a legend
(the confusion matrix: a colour bar of counts). Rendering uses matplotlib's Agg backend: no display
needed.
"""

from __future__ import annotations

import io
import math

from jaxpretrain import paths
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
  if paths.is_remote(path):  # matplotlib writes local files or a buffer: the buffer, written as one object
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=110, format="png")
    paths.write_bytes(path, buffer.getvalue())
  else:
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
  ax.legend()
  return _save(fig, path)


def loss_plot(rows: list[dict], path: str, title: str = "loss") -> str:
  """Train and eval loss of metrics.jsonl rows against the step, as a PNG at `path`."""
  train = [r for r in rows if "split" not in r]
  evals = [r for r in rows if r.get("split") == "eval"]
  return line_plot({"train": series(train, "loss"), "eval": series(evals, "loss")}, path, title=title, ylabel="loss")


def metric_panels(
  curves: dict[str, tuple[list, list]], path: str, *, title: str, baselines: dict[str, tuple[str, float]] | None = None
) -> str:
  """One PNG with a panel per metric against the step, each y axis named after its metric.

  Args:
    curves: metric name -> (steps, values); empty curves are skipped.
    path: the PNG to write.
    title: the figure's title.
    baselines: metric name -> (label, value): a dashed horizontal line in that metric's panel.

  Returns:
    `path`.
  """
  plt = _pyplot()
  drawn = {k: v for k, v in curves.items() if v[0]}
  fig, axes = plt.subplots(len(drawn), 1, figsize=(6.4, 1.2 + 2.2 * len(drawn)), sharex=True, squeeze=False)
  for ax, (name, (xs, ys)) in zip(axes[:, 0], drawn.items()):
    ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, label=f"eval {name}")
    if baselines and name in baselines:
      label, value = baselines[name]
      ax.axhline(value, color="gray", linestyle="--", linewidth=1, label=label)
    ax.set_ylabel(name)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
  axes[-1, 0].set_xlabel("step")
  axes[0, 0].set_title(title)
  return _save(fig, path)


def confusion_plot(confusion, label_names: list[str], path: str, *, title: str = "confusion matrix") -> str:
  """A confusion matrix as a heatmap with its counts written in the cells.

  Args:
    confusion: counts [num_labels (true), num_labels (predicted)].
    label_names: the label of each row/column.
    path: the PNG to write.
    title: the plot's title.

  Returns:
    `path`.
  """
  plt = _pyplot()
  counts = [[int(round(c)) for c in row] for row in confusion]
  n = len(counts)
  side = min(12.0, 2.5 + 0.6 * n)
  fig, ax = plt.subplots(figsize=(side + 1.0, side))
  image = ax.imshow(counts, cmap="Blues", vmin=0)
  fig.colorbar(image, ax=ax, label="examples")
  ax.set_xticks(range(n), label_names, rotation=45 if n > 4 else 0, ha="right" if n > 4 else "center")
  ax.set_yticks(range(n), label_names)
  ax.set_xlabel("predicted label")
  ax.set_ylabel("true label")
  ax.set_title(title)
  if n <= 30:
    top = max((c for row in counts for c in row), default=0)
    for i, row in enumerate(counts):
      for j, c in enumerate(row):
        ax.text(j, i, str(c), ha="center", va="center", color="white" if c > top / 2 else "black", fontsize=8)
  return _save(fig, path)


def plot_run(
  workdir: str, out_dir: str | None = None, baselines: dict[str, tuple[str, float]] | None = None
) -> list[str]:
  """Loss, learning rate, throughput and eval-metric PNGs of a run.

  Args:
    workdir: a run directory with metrics.jsonl.
    out_dir: where to write (default WORKDIR/plots).
    baselines: eval metric -> (label, value) drawn as a dashed line in eval.png (e.g. the
      majority-class accuracy).

  Returns:
    The paths written (a plot whose metric the run never logged is skipped).
  """
  rows = read_metrics(workdir)
  if not rows:
    raise UserError(f"no metrics in {workdir} (expected {paths.join(workdir, 'metrics.jsonl')})")
  out_dir = out_dir or paths.join(workdir, "plots")
  paths.makedirs(out_dir)
  train = [r for r in rows if "split" not in r]
  evals = [r for r in rows if r.get("split") == "eval"]
  written = []
  if any(series(train, "loss")[0] + series(evals, "loss")[0]):
    written.append(loss_plot(rows, paths.join(out_dir, "loss.png")))
  for key, name, label in (
    ("learning_rate", "learning_rate.png", "learning rate"),
    ("tokens_per_s", "throughput.png", "tokens / s"),
  ):
    curve = series(train, key)
    if curve[0]:
      written.append(line_plot({label: curve}, paths.join(out_dir, name), title=label, ylabel=label))
  metrics = sorted({k for r in evals for k in r if k not in ("step", "split", "loss")})
  eval_curves = {k: series(evals, k) for k in metrics}
  if any(xs for xs, _ in eval_curves.values()):
    written.append(metric_panels(eval_curves, paths.join(out_dir, "eval.png"), title="evaluation", baselines=baselines))
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
