"""`jaxpretrain suite --suite=glue --init_from=SOURCE --workdir=DIR`: a downstream suite in one command.

For each task of the suite table (`tasks/suites.py`), in table order: fine-tune in DIR/<task> with
its shipped config (`configs/<suite>/<task>.py`, the table's data and main metric), `init_from` and
any `--config.KEY=VALUE` overrides, through `loop.run` (the same train step as `finetune`); take the
checkpoint its main metric picked; predict every example of each of the task's eval splits on the
host (DIR/<task>/predictions.json) and score them with the table's official metrics. DIR/suite.json
keeps each finished task's scores, best step, training examples and seconds; DIR/suite.md is the
GLUE-paper table of them. Running the command again skips the tasks suite.json holds; a task that
was interrupted resumes from its checkpoints (`loop.run`'s own resume).
"""

from __future__ import annotations

import json
import os
import time

import jax
import numpy as np

from jaxpretrain import config as config_lib
from jaxpretrain import files, paths
from jaxpretrain.errors import UserError, warn
from jaxpretrain.tasks import suites

SUITE_JSON, SUITE_MD, PREDICTIONS = "suite.json", "suite.md", "predictions.json"


def run(suite: str, init_from: str, workdir: str, *, tasks: str = "", data_dir: str = "", overrides=()) -> dict:
  """Fine-tunes and scores the tasks of a suite not yet in WORKDIR/suite.json (see the module doc).

  Args:
    suite: a key of `suites.SUITES` ("glue").
    init_from: a pretraining run directory, an HF directory, or `hf:DIR` / `hf:HUB_ID`.
    workdir: the suite's directory: one run directory per task, suite.json and suite.md.
    tasks: comma-separated task names ("" = every task of the suite).
    data_dir: read task T from the saved DatasetDict DATA_DIR/T instead of the Hub ("" = the Hub).
    overrides: `KEY=VALUE` config overrides for every task.

  Returns:
    suite.json's content: {"suite", "model", "init_from", "tasks": {task: result}, "average"}.

  Raises:
    UserError: an unknown suite or task, a missing --init_from or task directory under --data_dir,
      or a WORKDIR whose suite.json is of another suite or model; any task's own one-line error.
  """
  table = _table(suite)
  names = _selected(suite, table, tasks)
  source = init_source(init_from)
  data_dir = _check_data_dir(data_dir, names)
  results = _saved_results(workdir, suite, source)
  for name in names:
    if name in results["tasks"]:
      warn(f"{suite}/{name} is finished ({paths.join(workdir, SUITE_JSON)}): skipped", kind="note")
      continue
    outcome = run_task(suite, table[name], source, paths.join(workdir, name), data_dir, overrides)
    if outcome is None:  # stopped by a preemption notice; its checkpoint resumes it
      break
    results["tasks"][name] = outcome
    results["average"] = suites.suite_average({n: r["metrics"] for n, r in results["tasks"].items()})
    _write(workdir, results, table)
  return results


def run_task(suite: str, task: suites.SuiteTask, init_from: str, workdir: str, data_dir: str, overrides) -> dict | None:
  """Fine-tunes one task in `workdir` and scores its best checkpoint on the task's eval splits.

  Args:
    suite: the suite's name (its configs are `configs/<suite>/<task>.py`).
    task: the task's row of the suite table.
    init_from: the checked source (`init_source`).
    workdir: the task's run directory.
    data_dir: the checked --data_dir ("" = the Hub).
    overrides: `KEY=VALUE` config overrides.

  Returns:
    {"metrics": {eval split: {metric: value}}, "score", "best_step", "checkpoint", "train_examples",
    "seconds"}, or None when a preemption notice stopped the training.
  """
  from jaxpretrain.train import loop

  start = time.perf_counter()
  config = config_lib.load(f"{suite}/{task.name}")
  config.init_from = init_from
  if data_dir:
    config.data.train = task.source("train", data_dir)
    config.data.eval = task.source(next(iter(task.eval_splits.values())), data_dir)
  config_lib.apply_overrides(config, overrides)
  if loop.run(config, workdir)["preempted"]:
    return None
  outputs, step, how = predict_splits(task, workdir, data_dir)
  metrics = {split: task.metrics(predictions, labels) for split, (predictions, labels) in outputs.items()}
  if jax.process_index() == 0:
    saved = {split: {"predictions": p.tolist(), "labels": y.tolist()} for split, (p, y) in outputs.items()}
    _write_json(paths.join(workdir, PREDICTIONS), saved)
  info = files.read_json(paths.join(workdir, "data_info.json"), "run file")
  return {
    "metrics": metrics,
    "score": float(np.mean([suites.task_score(m) for m in metrics.values()])),
    "best_step": step,
    "checkpoint": how,
    "train_examples": info.get("train_examples"),
    "seconds": round(time.perf_counter() - start, 1),
  }


def predict_splits(task: suites.SuiteTask, workdir: str, data_dir: str = "") -> tuple[dict, int, str]:
  """Per-example predictions of a fine-tuned run's best checkpoint on each of the task's eval splits.

  Args:
    task: the task's row of the suite table.
    workdir: the task's finished run directory (its config.json, tokenizer and label names are used).
    data_dir: as for `run`.

  Returns:
    ({eval split: (predictions, labels)} as numpy arrays in the split's order (class ids, or scores
    for regression), the checkpoint step, how it was chosen: "best" | "latest").
  """
  from jaxpretrain.commands.evaluate import restore_state
  from jaxpretrain.models.config import ModelConfig
  from jaxpretrain.parallel import strategy as strategy_lib
  from jaxpretrain.tasks import registry

  config = config_lib.load_saved(workdir)
  strategy = strategy_lib.create(config.mesh)
  best_metric = config.eval.metric if config.eval.every_steps else ""  # a best step is kept only then
  state, outputs = None, {}
  for split_name, split in task.eval_splits.items():
    config.data.eval = task.source(split, data_dir)
    data = registry.build_data(config, workdir, with_train=False)
    if state is None:
      fine_tuned = registry.build_task(config, ModelConfig.from_config(config.model), data)
      state, step, how = restore_state(
        config, workdir, fine_tuned, strategy, data.seq_len, best_metric=best_metric, best_mode=config.eval.metric_mode
      )
    outputs[split_name] = predict(state.task, state.params, strategy, data.eval_batches())
  return outputs, int(step), how


def predict(task, params, strategy, batches) -> tuple[np.ndarray, np.ndarray]:
  """(`task.predict` of every real row, their labels), on the host; padding rows (weight 0) left out."""
  fn = jax.jit(task.predict)
  predictions, labels = [], []
  for batch in batches:
    real = batch["weight"] > 0
    predictions.append(np.asarray(fn(params, strategy.put_batch(batch)))[real])
    labels.append(batch["label"][real])
  return np.concatenate(predictions), np.concatenate(labels)


def init_source(init_from: str) -> str:
  """The `init_from` every task starts from: local paths made absolute, an HF directory given `hf:`.

  Args:
    init_from: --init_from: a pretraining run directory, an HF model directory (with or without
      `hf:`), or `hf:HUB_ID`.

  Returns:
    The config's `init_from`.
  """
  if not init_from:
    raise UserError("--init_from is required: a pretraining run directory, an HF model directory, or hf:HUB_ID")
  path = init_from.removeprefix("hf:")
  if not os.path.isdir(path):
    return init_from  # a Hub id, or a path `loop.run` names as missing
  return ("hf:" if init_from.startswith("hf:") or _is_hf_dir(path) else "") + os.path.abspath(path)


def _is_hf_dir(path: str) -> bool:
  """A `save_pretrained` directory (config.json with a model_type) rather than a run (checkpoints/)."""
  config = os.path.join(path, "config.json")
  if os.path.isdir(os.path.join(path, "checkpoints")) or not os.path.isfile(config):
    return False
  return "model_type" in files.read_json(config, "config.json")


def model_name(init_from: str) -> str:
  """The model's row name in suite.md: a directory's name, or the Hub id."""
  path = init_from.removeprefix("hf:")
  return os.path.basename(os.path.normpath(path)) if os.path.isabs(path) else path


def _table(suite: str) -> dict[str, suites.SuiteTask]:
  if suite not in suites.SUITES:
    raise UserError(f"--suite={suite!r}: no such suite; choose one of {', '.join(suites.SUITES)}")
  return suites.SUITES[suite]


def _selected(suite: str, table: dict, tasks: str) -> list[str]:
  """The tasks --tasks names, in table order (all without it)."""
  wanted = [t.strip() for t in tasks.split(",") if t.strip()]
  unknown = [t for t in wanted if t not in table]
  if unknown:
    raise UserError(f"--tasks: {', '.join(unknown)} not in suite {suite}; choose from {', '.join(table)}")
  return [t for t in table if t in wanted or not wanted]


def _check_data_dir(data_dir: str, names: list[str]) -> str:
  """The absolute --data_dir, once it holds a directory per task ("" stays "")."""
  if not data_dir:
    return ""
  if paths.is_remote(data_dir):
    raise UserError(
      f"--data_dir={data_dir}: the saved datasets are read from a local directory; copy them down first "
      "(e.g. gcloud storage cp -r)"
    )
  if not os.path.isdir(data_dir):
    raise UserError(f"--data_dir={data_dir}: no such directory")
  missing = [n for n in names if not os.path.isdir(os.path.join(data_dir, n))]
  if missing:
    raise UserError(
      f"--data_dir={data_dir} has no {', '.join(f'{n}/' for n in missing)}: each task reads DATA_DIR/TASK, "
      "a DatasetDict.save_to_disk of its dataset"
    )
  return os.path.abspath(data_dir)


def _saved_results(workdir: str, suite: str, init_from: str) -> dict:
  """WORKDIR/suite.json of an earlier run of this suite and model, else a fresh one."""
  path = paths.join(workdir, SUITE_JSON)
  fresh = {"suite": suite, "model": model_name(init_from), "init_from": init_from, "tasks": {}, "average": None}
  if not paths.isfile(path):
    return fresh
  saved = files.read_json(path, "suite file")
  for key in ("suite", "init_from"):
    if saved.get(key) != fresh[key]:
      raise UserError(
        f"{path} holds the {key} {saved.get(key)!r}, not {fresh[key]!r}: use another --workdir (or remove it)"
      )
  return {**fresh, **saved}


def _write(workdir: str, results: dict, table: dict) -> None:
  """suite.json and suite.md (process 0)."""
  if jax.process_index() != 0:
    return
  _write_json(paths.join(workdir, SUITE_JSON), results)
  paths.write_text(paths.join(workdir, SUITE_MD), markdown(results, table))


def _write_json(path: str, content) -> None:
  paths.write_text(path, json.dumps(content, indent=2))


def markdown(results: dict, table: dict) -> str:
  """suite.md: the model's row in the layout of the GLUE paper's tables, then each task's run.

  Args:
    results: suite.json's content.
    table: the suite's table (its columns: one per eval split, e.g. MNLI-m and MNLI-mm).

  Returns:
    The Markdown text.
  """
  done = results["tasks"]
  columns = [(name, split, title) for name, t in table.items() for split, title in t.titles.items()]

  def cell(name, split):
    metrics = done.get(name, {}).get("metrics", {}).get(split)
    return "/".join(f"{100 * v:.1f}" for v in metrics.values()) if metrics else "–"

  average = "–" if results.get("average") is None else f"{results['average']:.1f}"
  lines = [
    f"# {results['suite'].upper()}: {results['model']}",
    "",
    "| Model | Avg | " + " | ".join(title for _, _, title in columns) + " |",
    "| --- | ---: |" + " ---: |" * len(columns),
    f"| {results['model']} | {average} | " + " | ".join(cell(name, split) for name, split, _ in columns) + " |",
    "",
    f"Scores ×100 on the validation splits (the test labels are not public), of the checkpoint each task's "
    f"main metric picked. Avg: the mean task score (a task's metrics averaged; MNLI counts once) over the "
    f"{len(done)} of {len(table)} tasks run. init_from: `{results['init_from']}`.",
    "",
    "| task | best step | checkpoint | train examples | seconds |",
    "| --- | ---: | --- | ---: | ---: |",
    *(
      f"| {name} | {r['best_step']} | {r['checkpoint']} | {r['train_examples']} | {r['seconds']} |"
      for name, r in sorted(done.items(), key=lambda item: list(table).index(item[0]))
    ),
    "",
  ]
  return "\n".join(lines)
