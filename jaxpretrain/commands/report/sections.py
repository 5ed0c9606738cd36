"""The sections of report.md: markdown lines from the facts `facts.py` gathers."""

from __future__ import annotations

from jaxpretrain.commands.report.facts import PLATEAU_MARGIN


def format_number(value) -> str:
  return f"{value:.4g}" if isinstance(value, float) else str(value)


def metric_table(metrics: dict) -> list[str]:
  rows = [f"| {k} | {format_number(v)} |" for k, v in sorted(metrics.items()) if isinstance(v, (int, float))]
  return ["| metric | value |", "| --- | --- |", *rows, ""]


def source_lines(source: dict | None) -> list[str]:
  """The Initialization section of `source_run`'s result."""
  lines = ["## Initialization", ""]
  if source is None:
    return lines + ["Trained from scratch (no `init_from`).", ""]
  if "hf" in source:
    weights = "its weights" if source["init_weights"] else "its architecture only, with fresh random weights"
    return lines + [f"Encoder from the Hugging Face model `{source['hf']}` ({weights}).", ""]
  if "problem" in source:
    return lines + [f"Encoder from `{source['path']}`, which cannot be read: {source['problem']}.", ""]
  if not source["exists"]:
    return lines + [f"Encoder from the pretraining run `{source['path']}`, which is no longer there.", ""]
  task = f" ({source['task']})" if source["task"] else ""
  lines.append(
    f"Encoder from the pretraining run `{source['path']}`{task}, its checkpoint step {source['init_step']} "
    f"(its final step: {source['final_step']})."
  )
  lines.append("")
  if source["eval"]:
    lines += [f"Its last evaluation (step {source['eval_step']}):", "", *metric_table(source["eval"])]
  else:
    lines += ["It logged no evaluation.", ""]
  unigram = source.get("unigram")
  if source.get("unigram_problem"):
    lines += [f"No unigram baseline: {source['unigram_problem']}.", ""]
  if unigram:
    accuracy = source["eval"]["accuracy"]
    verdict = (
      "**on the unigram plateau**: its encoder predicts little beyond the most frequent token"
      if accuracy < unigram["accuracy"] + PLATEAU_MARGIN
      else f"{accuracy - unigram['accuracy']:.3f} above it"
    )
    lines += [
      "| masked-token accuracy | value |",
      "| --- | --- |",
      f"| source run, step {source['eval_step']} | {format_number(accuracy)} |",
      f"| unigram baseline: always `{unigram['token']}` | {format_number(unigram['accuracy'])} |",
      "",
      f"The unigram baseline is the most frequent token's share of the {unigram['tokens']} scored tokens of its "
      f"{unigram['rows']} eval rows. The source run is {verdict}.",
      "",
    ]
  return lines


def data_lines(info: dict) -> list[str]:
  """The Data section: examples per split and label counts per split."""
  splits = [s for s in ("train", "eval") if info.get(f"{s}_examples") is not None]
  if not splits:
    return []
  lines = ["## Data", "", "| split | data | examples |", "| --- | --- | --- |"]
  lines += [f"| {s} | `{info.get(s, '')}` | {info[f'{s}_examples']} |" for s in splits]
  lines.append("")
  counts = info.get("label_counts") or {}
  splits = [s for s in ("train", "eval") if s in counts]
  if splits:
    unit = info.get("label_unit", "examples")
    lines += [
      f"Labels ({unit} per label and split):",
      "",
      "| label | " + " | ".join(splits) + " |",
      "| --- |" + " --- |" * len(splits),
    ]
    totals = {s: sum(counts[s].values()) for s in splits}
    for name in info.get("label_names") or counts[splits[0]]:
      cells = [f"{counts[s].get(name, 0)} ({counts[s].get(name, 0) / max(totals[s], 1):.1%})" for s in splits]
      lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
  return lines


def checkpoint_lines(choice: dict | None, config) -> list[str]:
  """The Checkpoint section: the best step and how it was chosen, or the latest."""
  if choice is None:
    return []
  lines = ["## Checkpoint", ""]
  if not choice["metric"]:
    lines.append(
      f"No evaluation during training (eval.every_steps={config.eval.every_steps}), so no best step was kept: "
      f"the run's checkpoint is the latest, step {choice['latest']}."
    )
  elif choice["best"] is None:
    lines.append(
      f"No kept checkpoint has eval.{choice['metric']}: the run's checkpoint is the latest, step {choice['latest']}."
    )
  else:
    latest = "the latest" if choice["best"] == choice["latest"] else f"the latest is step {choice['latest']}"
    extreme = "highest" if choice["mode"] == "max" else "lowest"
    lines.append(
      f"Best step: **{choice['best']}**, the {extreme} eval.{choice['metric']} (eval.metric_mode={choice['mode']}) "
      f"among the evaluations saved with the kept checkpoints: {choice['metric']} = {format_number(choice['value'])}; "
      f"{latest}."
    )
  lines[-1] += " `jaxpretrain evaluate` scores this step."
  lines.append("")
  return lines


def baseline_lines(baseline: dict | None, rows: list[tuple[str, float]]) -> list[str]:
  """Model accuracies beside the majority-class baseline.

  Args:
    baseline: `majority_baseline`'s result.
    rows: (what, accuracy) of the model, e.g. the final step's and the evaluated checkpoint's.
  """
  if baseline is None or not rows:
    return []
  lines = [
    "## Accuracy against the majority-class baseline",
    "",
    "| | accuracy |",
    "| --- | --- |",
    *(f"| {what} | {format_number(acc)} |" for what, acc in rows),
    f"| majority class: always `{baseline['label']}` ({baseline['train_count']} of {baseline['train_total']} "
    f"training labels) | {format_number(baseline['accuracy'])} |",
    "",
  ]
  if max(acc for _, acc in rows) <= baseline["accuracy"]:
    lines += [
      "The model is **not above the majority-class baseline**: it has learned no more than the label frequencies.",
      "",
    ]
  return lines


def evaluation_lines(evaluation: dict, choice: dict | None, confusion_png: str = "") -> list[str]:
  """The evaluated checkpoint's metrics and, with a confusion matrix, the per-class table and the matrix."""
  from jaxpretrain.tasks.classification import per_class_scores

  how = {"given": "the step asked for", "latest": "the latest"}.get(evaluation.get("checkpoint"), "")
  if evaluation.get("checkpoint") == "best" and choice and choice["metric"]:
    how = f"best by eval.{choice['metric']}"
  where = f" on `{evaluation['data']}`" if evaluation.get("data") else ""
  examples = f" ({evaluation['examples']} examples)" if evaluation.get("examples") is not None else ""
  lines = [
    f"## Evaluation of step {evaluation['step']}" + (f" ({how})" if how else ""),
    "",
    f"Scored{where}{examples} by `jaxpretrain evaluate`.",
    "",
    *metric_table({k: v for k, v in evaluation.items() if k not in ("step", "examples")}),
  ]
  confusion = evaluation.get("confusion")
  if not confusion:
    return lines
  names = evaluation.get("label_names") or [str(i) for i in range(len(confusion))]
  scores = per_class_scores(confusion)
  lines += [
    "Per class (from the confusion matrix):",
    "",
    "| label | precision | recall | F1 | support |",
    "| --- | --- | --- | --- | --- |",
  ]
  for i, name in enumerate(names):
    lines.append(
      f"| {name} | {scores['precision'][i]:.4f} | {scores['recall'][i]:.4f} | {scores['f1'][i]:.4f} "
      f"| {int(scores['support'][i])} |"
    )
  lines += [
    "",
    "Confusion matrix (rows: true label, columns: predicted label):",
    "",
    "| true \\ predicted | " + " | ".join(names) + " |",
    "| --- |" + " --- |" * len(names),
    *(f"| {name} | " + " | ".join(str(int(c)) for c in row) + " |" for name, row in zip(names, confusion)),
    "",
  ]
  if confusion_png:
    lines += [f"![confusion]({confusion_png})", ""]
  return lines
