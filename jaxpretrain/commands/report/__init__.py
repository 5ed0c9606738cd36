"""WORKDIR/report.md of a fine-tuning run: what it started from and trained on, how it did, and against what.

`jaxpretrain finetune` writes it when training ends, and `jaxpretrain evaluate` rewrites it with
the evaluated checkpoint (the demo writes its own report). Sections, each where the run has what
it needs:

- Initialization: the `init_from` pretraining run (path, its final step, the step the fine-tune
  started from, its last eval metrics and, for an MLM source, its masked-token accuracy beside the
  unigram baseline), or the Hugging Face model, or "from scratch".
- Data: examples per split and the label counts per split (`label_counts` of data_info.json).
- Checkpoint: the best step by `eval.metric` (`eval.metric_mode`) among the kept checkpoints, or
  the latest when the run kept no best one.
- Final evaluation (the loop's summary, else metrics.jsonl's last eval row).
- Accuracy against the majority-class baseline: always predicting the most frequent training
  label, scored on the eval split.
- Evaluation of the checkpoint `evaluate` reads: its metrics and, for classification, per-class
  precision/recall/F1 and the confusion matrix (a table and plots/confusion.png).
- Last training log, and the plots (`plot.plot_run`; eval.png draws the majority baseline).
"""

from __future__ import annotations

import os

from jaxpretrain import paths
from jaxpretrain.commands import plot
from jaxpretrain.commands.report.facts import (
  checkpoint_choice,
  evaluate_checkpoint,
  majority_baseline,
  read_run_json,
  saved_config,
  source_run,
  summary_from_metrics,
  unigram_baseline,
)
from jaxpretrain.commands.report.sections import (
  baseline_lines,
  checkpoint_lines,
  data_lines,
  evaluation_lines,
  metric_table,
  source_lines,
)
from jaxpretrain.errors import UserError, first_line
from jaxpretrain.train.metrics import read_metrics

__all__ = [
  "checkpoint_choice",
  "checkpoint_lines",
  "majority_baseline",
  "source_lines",
  "source_run",
  "unigram_baseline",
  "write",
]


def write(
  workdir: str,
  summary: dict | None = None,
  title: str = "Fine-tuning run",
  *,
  evaluation: dict | None = None,
  config=None,
) -> str:
  """Writes WORKDIR/report.md (and WORKDIR/plots/*.png) for a finished run.

  Args:
    workdir: the run directory (metrics.jsonl, config.json, data_info.json, checkpoints/ inside;
      each section needs only its own files).
    summary: what `train.loop.run` returned (`step`, `train`, `eval`, `preempted`); None reads the
      last rows of metrics.jsonl.
    title: the report's heading.
    evaluation: an `evaluate.evaluate` result to report; None evaluates the run's checkpoint here
      (see `evaluate_checkpoint`), except for a preempted run, which has no time to spare.
    config: the run's config as `evaluation` used it (overrides included); default WORKDIR/config.json.

  Returns:
    The report's path.
  """
  from_loop = summary is not None
  summary = summary if from_loop else summary_from_metrics(workdir)
  config = config if config is not None else saved_config(workdir)
  info = read_run_json(paths.join(workdir, "data_info.json"))
  note = ""
  if evaluation is None and config is not None and not summary.get("preempted"):
    evaluation, note = evaluate_checkpoint(config, workdir)
  choice = checkpoint_choice(workdir, config) if config is not None else None

  lines = [
    f"# {title}",
    "",
    f"Workdir: `{paths.absolute(workdir)}`, final step {summary['step']}"
    + (" (preempted: resume with the same command)" if summary.get("preempted") else "")
    + ".",
    "",
  ]
  if config is not None:
    try:
      source = source_run(config)
    except UserError as e:  # a damaged file of the source run
      source = {"path": paths.absolute(config.init_from), "problem": first_line(e)}
    lines += source_lines(source)
  lines += data_lines(info)
  lines += checkpoint_lines(choice, config)
  final_eval = summary.get("eval") or {}
  step = summary["step"] if from_loop else summary.get("eval_step")
  if final_eval:
    lines += [f"## Final evaluation (step {step})", "", *metric_table(final_eval)]

  baseline = majority_baseline(info)
  accuracies = []
  if isinstance(final_eval.get("accuracy"), (int, float)):
    accuracies.append((f"model, final evaluation (step {step})", final_eval["accuracy"]))
  if evaluation and isinstance(evaluation.get("accuracy"), (int, float)):
    accuracies.append((f"model, evaluated checkpoint (step {evaluation['step']})", evaluation["accuracy"]))
  lines += baseline_lines(baseline, accuracies)

  out_dir = paths.join(workdir, "plots")
  if evaluation:
    png = ""
    if evaluation.get("confusion"):
      paths.makedirs(out_dir)
      names = evaluation.get("label_names") or [str(i) for i in range(len(evaluation["confusion"]))]
      title_text = f"confusion matrix, step {evaluation['step']}"
      png = plot.confusion_plot(evaluation["confusion"], names, paths.join(out_dir, "confusion.png"), title=title_text)
    lines += evaluation_lines(evaluation, choice, os.path.relpath(png, workdir) if png else "")
  elif note:
    lines += [f"The checkpoint was not evaluated for this report: {note}.", ""]
  if summary.get("train"):
    lines += ["## Last training log", "", *metric_table(summary["train"])]

  baselines = {"accuracy": (f"majority class ({baseline['label']})", baseline["accuracy"])} if baseline else None
  pngs = plot.plot_run(workdir, baselines=baselines) if read_metrics(workdir) else []
  if pngs:
    lines += ["## Plots", ""]
    lines += [f"![{os.path.splitext(os.path.basename(p))[0]}]({os.path.relpath(p, workdir)})" for p in pngs]
    lines.append("")
  path = paths.join(workdir, "report.md")
  paths.write_text(path, "\n".join(lines))
  return path
