"""The facts report.md states, gathered from a run's files: its summary, the best checkpoint, the
majority-class and unigram baselines, the `init_from` source, and an evaluation of the checkpoint."""

from __future__ import annotations

import os

import numpy as np

from jaxpretrain import files, paths
from jaxpretrain.errors import UserError, first_line
from jaxpretrain.tasks import registry
from jaxpretrain.train.metrics import read_metrics

# A source run whose masked-token accuracy is less than this above the unigram baseline is reported
# as on the unigram plateau: it predicts little beyond the most frequent token.
PLATEAU_MARGIN = 0.01


def read_run_json(path: str) -> dict:
  return files.read_json(path, "run file") if paths.isfile(path) else {}


def saved_config(workdir: str):
  from jaxpretrain import config as config_lib

  if not paths.isfile(paths.join(workdir, "config.json")):
    return None
  return config_lib.load_saved(workdir)


def summary_from_metrics(workdir: str) -> dict:
  """A summary like the loop's (`step`, `train`, `eval`) from WORKDIR/metrics.jsonl's last rows.

  Args:
    workdir: the run directory.

  Returns:
    {"step": the last logged step (0 without rows), "train": the last training row, "eval": the
    last eval row, "eval_step": that row's step}; rows without their `step`/`split`.
  """
  rows = read_metrics(workdir)
  train = [r for r in rows if "split" not in r]
  evals = [r for r in rows if r.get("split") == "eval"]
  strip = lambda r: {k: v for k, v in r.items() if k not in ("step", "split")}
  return {
    "step": max((r.get("step", 0) for r in rows), default=0),
    "train": strip(train[-1]) if train else {},
    "eval": strip(evals[-1]) if evals else {},
    "eval_step": evals[-1].get("step") if evals else None,
  }


def checkpoint_choice(workdir: str, config) -> dict | None:
  """Which kept checkpoint is the run's: the best by `eval.metric`, else the latest.

  The loop keeps a best step only when it evaluated during training (`eval.every_steps` > 0);
  `Checkpointer.best_step` reads the eval metric saved with each kept step.

  Args:
    workdir: the run directory.
    config: the run's config.

  Returns:
    {"metric", "mode" ("" / "min" / "max"), "best" (step or None), "value" (the best step's
    metric), "latest" (step)}, or None when the run has no complete checkpoint.
  """
  from jaxpretrain import checkpoint as checkpoint_lib

  rows = (
    [r for r in checkpoint_lib.describe(workdir) if r["complete"]]
    if paths.isdir(checkpoint_lib.checkpoint_dir(workdir))
    else []
  )
  if not rows:
    return None
  metric = config.eval.metric if config.eval.every_steps else ""
  ckpt = checkpoint_lib.Checkpointer(workdir, read_only=True, best_metric=metric, best_mode=config.eval.metric_mode)
  try:
    best = ckpt.best_step()
  finally:
    ckpt.close(raise_errors=False)
  value = next((r["metrics"].get(metric) for r in rows if r["step"] == best), None)
  return {
    "metric": metric,
    "mode": config.eval.metric_mode if metric else "",
    "best": best,
    "value": value,
    "latest": rows[-1]["step"],
  }


def majority_baseline(info: dict) -> dict | None:
  """The accuracy of always predicting the most frequent training label, on the eval split.

  Args:
    info: the run's data info (`label_counts` per split, see `data/finetune/labeled.py`).

  Returns:
    {"label", "train_count", "train_total", "accuracy"}, or None without train and eval counts.
    Ties go to the label that comes first in the label vocabulary.
  """
  counts = info.get("label_counts") or {}
  train, evals = counts.get("train") or {}, counts.get("eval") or {}
  if not sum(train.values()) or not sum(evals.values()):
    return None
  label = max(train, key=train.get)
  return {
    "label": label,
    "train_count": train[label],
    "train_total": sum(train.values()),
    "accuracy": evals.get(label, 0) / sum(evals.values()),
  }


def unigram_baseline(source: str, source_config) -> dict | None:
  """The masked-token accuracy of always predicting the most frequent token, on a pretraining run's eval rows.

  MLM selects the positions it scores uniformly among the real, non-special tokens, so always
  predicting token t scores t's share of those tokens: the most frequent token's share is the
  unigram baseline. It is computed on the rows the run evaluated on (`eval.batches` batches of the
  prepared eval split, in file order, as `data/pretrain/pipeline.py` reads them).

  Args:
    source: the pretraining run's directory (data_info.json names its prepared data).
    source_config: its config.

  Returns:
    {"token", "accuracy", "rows", "tokens"}, or None when its prepared data or tokenizer is gone.
  """
  from jaxpretrain.data.pretrain import loader
  from jaxpretrain.data.tokenizer import Tokenizer

  prepared = read_run_json(paths.join(source, "data_info.json")).get("prepared_dir", "")
  tokenizer_dir = paths.join(source, "tokenizer")
  if prepared and paths.is_remote(prepared):
    prepared = paths.local_cache(prepared)  # the local copy the run read, if this machine has it: not fetched
  if not prepared or not os.path.isdir(prepared) or not paths.isdir(tokenizer_dir):
    return None
  tokenizer = Tokenizer.load(tokenizer_dir)
  batch = source_config.eval.batch_size or source_config.train.batch_size
  if loader.epoch_size(prepared, "eval") < batch:
    return None  # the run never evaluated: fewer held-out rows than one batch
  it = iter(loader.make_dataset(prepared, "eval", global_batch_size=batch, seed=0, shuffle=False, repeat=True))
  rows = [next(it) for _ in range(source_config.eval.batches)]
  ids = np.concatenate([r["input_ids"] for r in rows])
  real = np.concatenate([r["segment_ids"] for r in rows]) != 0
  scored = ids[real & ~np.isin(ids, tokenizer.all_special_ids)]
  if not scored.size:
    return None
  counts = np.bincount(scored)
  top = int(np.argmax(counts))
  return {
    "token": tokenizer.hf.convert_ids_to_tokens(top),
    "accuracy": float(counts[top] / scored.size),
    "rows": len(ids),
    "tokens": int(scored.size),
  }


def source_run(config) -> dict | None:
  """What `init_from` names, for the report.

  Args:
    config: the fine-tuning run's config.

  Returns:
    None without init_from; {"hf": id or path} for `hf:`; else {"path", "exists", "final_step",
    "init_step", "task", "eval" (its last eval row), "eval_step", "unigram" (`unigram_baseline`, MLM
    sources only)}.
  """
  from jaxpretrain import checkpoint as checkpoint_lib

  if not config.init_from:
    return None
  if config.init_from.startswith("hf:"):
    return {"hf": config.init_from[len("hf:") :], "init_weights": bool(config.init_weights)}
  path = paths.absolute(config.init_from)
  out = {"path": path, "exists": paths.isdir(path)}
  if not out["exists"]:
    return out
  steps = []
  if paths.isdir(checkpoint_lib.checkpoint_dir(path)):
    steps = [r["step"] for r in checkpoint_lib.describe(path) if r["complete"]]
  out["final_step"] = max(steps, default=None)
  out["init_step"] = config.init_step if config.init_step >= 0 else out["final_step"]
  summary = summary_from_metrics(path)
  out["eval"], out["eval_step"] = summary["eval"], summary["eval_step"]
  source_config = saved_config(path)
  out["task"] = source_config.task.name if source_config is not None else ""
  if out["task"] in registry.TASKS and registry.spec(out["task"]).unigram_baseline and "accuracy" in out["eval"]:
    try:
      out["unigram"] = unigram_baseline(path, source_config)
    except UserError as e:  # its prepared data damaged or half deleted: the rest still stands
      out["unigram_problem"] = first_line(e)
  return out


def evaluate_checkpoint(config, workdir: str) -> tuple[dict | None, str]:
  """Evaluates the run's best (or latest) checkpoint for the report, without writing eval.json.

  Skipped (None, why) for several processes (process 0 alone cannot run the sharded step), without
  checkpoints or eval data, and for tasks whose `evaluate` decodes or post-processes (translation's
  BLEU, QA's EM/F1), which `jaxpretrain evaluate` does on request.

  Args:
    config: the run's config.
    workdir: the run directory.

  Returns:
    (the `evaluate` result or None, why it was skipped: "" when evaluated).
  """
  import jax

  from jaxpretrain import checkpoint as checkpoint_lib
  from jaxpretrain.commands import evaluate as evaluate_lib
  from jaxpretrain.tasks import registry

  if jax.process_count() > 1:
    return None, "several processes: run `jaxpretrain evaluate` for the per-class scores"
  if registry.spec(config.task.name).eval_scores is not None:
    return None, ""
  if not paths.isdir(checkpoint_lib.checkpoint_dir(workdir)):
    return None, ""
  try:
    return evaluate_lib.evaluate(config, workdir, save=False), ""
  except UserError as e:
    return None, first_line(e)
