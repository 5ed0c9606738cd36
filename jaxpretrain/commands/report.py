"""WORKDIR/report.md of a training run: final train and eval metrics, and the run's plots.

`jaxpretrain finetune` writes it when training ends (the demo writes its own, richer report).
"""

from __future__ import annotations

import os

from jaxpretrain.commands import plot


def _number(value) -> str:
  return f"{value:.4g}" if isinstance(value, float) else str(value)


def write(workdir: str, summary: dict, title: str = "Fine-tuning run") -> str:
  """Writes WORKDIR/report.md (and WORKDIR/plots/*.png) for a finished run.

  Args:
    workdir: the run directory (metrics.jsonl inside).
    summary: what `train.loop.run` returned (`step`, `train`, `eval`, ...).
    title: the report's heading.

  Returns:
    The report's path.
  """
  lines = [
    f"# {title}",
    "",
    f"Workdir: `{os.path.abspath(workdir)}`, final step {summary['step']}"
    + (" (preempted: resume with the same command)" if summary.get("preempted") else "")
    + ".",
    "",
  ]
  for name, metrics in (
    ("Final evaluation", summary.get("eval") or {}),
    ("Last training log", summary.get("train") or {}),
  ):
    if metrics:
      lines += [f"## {name}", "", "| metric | value |", "| --- | --- |"]
      lines += [f"| {k} | {_number(v)} |" for k, v in sorted(metrics.items())]
      lines.append("")
  pngs = plot.plot_run(workdir)
  if pngs:
    lines += ["## Plots", ""]
    lines += [f"![{os.path.splitext(os.path.basename(p))[0]}]({os.path.relpath(p, workdir)})" for p in pngs]
    lines.append("")
  path = os.path.join(workdir, "report.md")
  with open(path, "w") as f:
    f.write("\n".join(lines))
  return path
