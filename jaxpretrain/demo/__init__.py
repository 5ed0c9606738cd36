"""`jaxpretrain demo --workdir=DIR`: does pretraining pay off? The whole story on the embedded data.

1. prepare: generate the embedded corpus, train a WordPiece tokenizer, pack ArrayRecord shards;
2. pretrain a small BERT with MLM (`loop.run`, checkpoints in DIR/pretrain);
3. fine-tune its encoder on N, 2N, 4N, 8N labeled reviews, `demo.seeds` seeds each;
4. the same architecture from scratch on the same examples (same tokenizer, steps and recipe);
5. the VSM baseline (LSA word vectors from the same corpus + logistic regression) on them too;
6. DIR/demo.json (mean/std test accuracy per method and budget), DIR/report.md and PNG plots.

Fine-tuning runs go through the same jitted `train_step` as pretraining (`finetune_sweep.Sweep`),
compiled once for all of them. A seed fixes a run's labeled sample, its initialization and its
batch order; all runs are scored on one fixed test split.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import time

import numpy as np

from jaxpretrain import files
from jaxpretrain.errors import UserError

METHODS = ("pretrained", "scratch", "vsm")
SMOKE_NOTE = " (a --small smoke run: the targets are not expected to hold at this size)"
# `jaxpretrain demo --small`: the whole pipeline in well under a minute (tests, smoke checks).
SMALL = {
  "data.embedded_documents": 300,
  "data.seq_len": 64,
  "train.steps": 6,
  "train.warmup_steps": 2,
  "train.log_every": 3,
  "eval.every_steps": 0,
  "eval.batches": 1,
  "checkpoint.every_steps": 3,
  "model.vocab_size": 1024,
  "demo.budgets": [8, 16],
  "demo.seeds": 3,
  "demo.test_examples": 64,
  "demo.steps": 4,
  "demo.batch_size": 8,
  "demo.warmup_steps": 1,
  "demo.vsm_dims": 8,
}


class Progress:
  """`[demo 01:23] message` lines on stderr, timed from the start of the demo."""

  def __init__(self):
    self.start = time.perf_counter()

  def elapsed(self) -> float:
    return time.perf_counter() - self.start

  def __call__(self, message: str) -> None:
    minutes, seconds = divmod(int(self.elapsed()), 60)
    print(f"[demo {minutes:02d}:{seconds:02d}] {message}", file=sys.stderr, flush=True)


def _fmt(metrics: dict, key: str) -> str:
  return f"{metrics[key]:.3f}" if isinstance(metrics.get(key), float) else "n/a"


def finetune_config(config, tokenizer_dir: str):
  """The fine-tuning config of the demo: the pretraining model, `demo.*` training settings."""
  ft = copy.deepcopy(config)
  d = config.demo
  ft.task.name, ft.task.pooling, ft.task.classifier_dropout = "classification", d.pooling, d.classifier_dropout
  ft.data.seq_len, ft.data.tokenizer = d.seq_len, tokenizer_dir
  ft.train.steps, ft.train.num_epochs, ft.train.batch_size = d.steps, 0.0, d.batch_size
  ft.train.learning_rate, ft.train.warmup_steps, ft.train.weight_decay = d.learning_rate, d.warmup_steps, d.weight_decay
  ft.eval.batch_size = d.batch_size
  return ft


def validate(config) -> None:
  """Checks a demo config before any work: every key (`config_schema`), the `demo.*` section, and
  the device mesh against the model and the pretraining and fine-tuning batch sizes.

  Args:
    config: the demo config (`configs/demo.py` plus overrides).

  Raises:
    UserError: naming the first bad key.
  """
  from jaxpretrain import config_schema
  from jaxpretrain.models.config import ModelConfig
  from jaxpretrain.parallel import strategy as strategy_lib

  if "demo" not in config:
    raise UserError(
      "the demo needs the demo.* keys of configs/demo.py: run it with --config=configs/demo.py or a config built on it"
    )
  config_schema.validate(config)
  strategy = strategy_lib.create(config.mesh)
  strategy.check_batch_size(config.train.batch_size, grad_accum_steps=config.train.grad_accum_steps)
  strategy.check_batch_size(config.demo.batch_size, "demo.batch_size")
  strategy.check_model(ModelConfig.from_config(config.model))


def summarize(budgets: list[int], runs: dict[str, dict[int, list[float]]]) -> dict:
  """demo.json: mean and (sample) standard deviation of accuracy over seeds, per method and budget."""
  seeds = len(next(iter(runs.values()))[budgets[0]])
  std = lambda xs: float(np.std(xs, ddof=1)) if len(xs) > 1 else 0.0
  return {
    "budgets": budgets,
    "accuracy": {m: {str(b): float(np.mean(runs[m][b])) for b in budgets} for m in runs},
    "std": {m: {str(b): std(runs[m][b]) for b in budgets} for m in runs},
    "seeds": seeds,
  }


def targets(result: dict) -> dict[str, bool]:
  """The demo's two claims, checked on the measured means."""
  acc, budgets = result["accuracy"], result["budgets"]
  first, last = str(budgets[0]), str(budgets[-1])
  return {
    f"pretrained at {first} labels >= scratch at {last} labels": acc["pretrained"][first] >= acc["scratch"][last],
    "pretrained > VSM at every budget": all(acc["pretrained"][str(b)] > acc["vsm"][str(b)] for b in budgets),
  }


def run(config, workdir: str, *, smoke: bool = False) -> dict:
  """Runs the demo (see the module doc) and writes DIR/demo.json, DIR/report.md and plots.

  Args:
    config: the demo config (`configs/demo.py`): pretraining sections plus `demo.*`.
    workdir: the output directory (the pretraining run goes to WORKDIR/pretrain).
    smoke: a `--small` run: the targets are reported as not expected to hold at its size.

  Returns:
    The demo.json content.
  """
  from jaxpretrain.data.finetune.features import encode_classification
  from jaxpretrain.data.pretrain import pipeline
  from jaxpretrain.data.readers import embedded
  from jaxpretrain.data.tokenizer import Tokenizer
  from jaxpretrain.demo.sweep import Sweep
  from jaxpretrain.tasks import registry
  from jaxpretrain.train import loop

  validate(config)
  files.check_dir(workdir, "--workdir", writable=True)
  say, timings = Progress(), {}
  d, budgets = config.demo, list(config.demo.budgets)
  pretrain_dir = os.path.join(workdir, "pretrain")
  os.makedirs(workdir, exist_ok=True)

  say(f"prepare: {config.data.embedded_documents} embedded documents -> tokenizer + packed shards")
  prepared = pipeline.ensure_prepared(
    config, pretrain_dir, registry.spec(config.task.name).packing, registry.tokenizer_type(config)
  )
  timings["prepare"] = say.elapsed()
  say(
    f"pretrain: {config.model.num_hidden_layers} layers x {config.model.hidden_size}, MLM, "
    f"{config.train.steps} steps of {config.train.batch_size} x {config.data.seq_len} tokens ({prepared})"
  )
  summary = loop.run(config, pretrain_dir)
  timings["pretrain"] = say.elapsed() - timings["prepare"]
  say(
    f"pretrain: done, step {summary['step']}, train loss {_fmt(summary['train'], 'loss')}, "
    f"eval loss {_fmt(summary['eval'], 'loss')}, {timings['pretrain']:.0f}s"
  )

  tokenizer_dir = os.path.join(pretrain_dir, "tokenizer")
  tokenizer = Tokenizer.load(tokenizer_dir)
  ft = finetune_config(config, tokenizer_dir)
  names = embedded.LABEL_NAMES
  encode = lambda examples: encode_classification(
    [{"text_a": e["text"], "text_b": None, "label": e["label"], "where": "embedded"} for e in examples],
    tokenizer,
    d.seq_len,
    names,
  )
  test = embedded.labeled_examples("test", d.test_examples, 0)
  sweep = Sweep(ft, num_labels=len(names), steps=d.steps, eval_arrays=encode(test))
  runs = {m: {b: [] for b in budgets} for m in METHODS}
  samples = {(b, s): embedded.labeled_examples("train", b, s) for b in budgets for s in range(d.seeds)}
  start = say.elapsed()
  for b in budgets:
    for s in range(d.seeds):
      arrays = encode(samples[b, s])
      runs["pretrained"][b].append(sweep.run(arrays, seed=s, init_from=pretrain_dir)["accuracy"])
      runs["scratch"][b].append(sweep.run(arrays, seed=s)["accuracy"])
    say(
      f"fine-tune {b:>4} labels: pretrained {np.mean(runs['pretrained'][b]):.3f}, "
      f"scratch {np.mean(runs['scratch'][b]):.3f} (mean of {d.seeds} seeds)"
    )
  timings["finetune"] = say.elapsed() - start

  start = say.elapsed()
  runs["vsm"] = vsm_accuracies(config, tokenizer, samples, test, budgets, d.seeds, say)
  timings["vsm"] = say.elapsed() - start

  result = summarize(budgets, runs)
  with open(os.path.join(workdir, "demo.json"), "w") as f:
    json.dump(result, f, indent=2)
  timings["total"] = say.elapsed()
  write_report(workdir, result, runs, timings, summary, config, smoke=smoke)
  for claim, ok in targets(result).items():
    say(f"target: {claim}: {'yes' if ok else 'no'}{SMOKE_NOTE if smoke else ''}")
  say(f"wrote {os.path.join(workdir, 'demo.json')} and {os.path.join(workdir, 'report.md')} in {timings['total']:.0f}s")
  return result


def vsm_accuracies(config, tokenizer, samples: dict, test: list[dict], budgets: list[int], seeds: int, say) -> dict:
  """Test accuracy of the VSM baseline per budget and seed, word vectors fit once on the corpus."""
  from jaxpretrain.data.readers import embedded
  from jaxpretrain.demo.vsm import VSMBaseline

  documents = tokenizer.encode_batch(list(embedded.documents(config.data.embedded_documents, config.train.seed)))
  vsm = VSMBaseline.fit_word_vectors(documents, tokenizer.vocab_size, dims=config.demo.vsm_dims, seed=0)
  test_ids, test_labels = tokenizer.encode_batch([e["text"] for e in test]), np.array([e["label"] for e in test])
  out = {b: [] for b in budgets}
  for b in budgets:
    for s in range(seeds):
      examples = samples[b, s]
      vsm.fit_classifier(
        tokenizer.encode_batch([e["text"] for e in examples]), np.array([e["label"] for e in examples]), 2, seed=s
      )
      out[b].append(vsm.accuracy(test_ids, test_labels))
    say(f"VSM       {b:>4} labels: {np.mean(out[b]):.3f}")
  return out


def write_report(
  workdir: str, result: dict, runs: dict, timings: dict, summary: dict, config, *, smoke: bool = False
) -> None:
  """DIR/report.md with the results table, the two targets, timings and the plots."""
  from jaxpretrain.commands import plot
  from jaxpretrain.train.metrics import read_metrics

  loss_png = plot.loss_plot(
    read_metrics(os.path.join(workdir, "pretrain")),
    os.path.join(workdir, "pretrain_loss.png"),
    title="MLM pretraining loss",
  )
  acc_png = plot.accuracy_vs_labels(result, os.path.join(workdir, "accuracy_vs_labels.png"))
  budgets, acc, std = result["budgets"], result["accuracy"], result["std"]
  lines = [
    "# jaxpretrain demo: does pretraining pay off?",
    "",
    f"Test accuracy on {config.demo.test_examples} held-out embedded reviews, mean ± std over "
    f"{result['seeds']} seeds (each seed: its own labeled sample, initialization and batch order). "
    "The classes are balanced: chance is 0.5.",
    "",
    "| labels | " + " | ".join(METHODS) + " |",
    "|---:|" + "---:|" * len(METHODS),
  ]
  for b in budgets:
    lines.append(f"| {b} | " + " | ".join(f"{acc[m][str(b)]:.3f} ± {std[m][str(b)]:.3f}" for m in METHODS) + " |")
  lines += ["", "## Targets", ""]
  if smoke:
    lines += [
      "This is a `--small` smoke run: it checks that the pipeline works end to end; the targets are not "
      "expected to hold at this size.",
      "",
    ]
  lines += [f"- {claim}: **{'yes' if ok else 'no'}**" for claim, ok in targets(result).items()]
  lines += [
    "",
    "## Setup",
    "",
    f"- pretraining: {config.model.num_hidden_layers} layers, hidden {config.model.hidden_size}, "
    f"vocab {config.model.vocab_size}; MLM on {config.data.embedded_documents} documents, "
    f"{summary['step']} steps × {config.train.batch_size} × {config.data.seq_len} tokens, "
    f"final eval loss {_fmt(summary['eval'], 'loss')}, "
    f"eval masked-token accuracy {_fmt(summary['eval'], 'accuracy')}",
    f"- fine-tuning (pretrained and scratch alike): {config.demo.steps} steps × batch "
    f"{config.demo.batch_size}, lr {config.demo.learning_rate}, {config.demo.pooling} pooling, "
    f"seq_len {config.demo.seq_len}",
    f"- VSM: LSA ({config.demo.vsm_dims} dims) word vectors from the same corpus, logistic regression",
    "- time: " + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items()),
    "",
    f"![pretraining loss]({os.path.basename(loss_png)})",
    "",
    f"![accuracy vs labels]({os.path.basename(acc_png)})",
    "",
    "Per-seed accuracies: "
    + json.dumps({m: {str(b): [round(x, 4) for x in runs[m][b]] for b in budgets} for m in METHODS}),
    "",
  ]
  with open(os.path.join(workdir, "report.md"), "w") as f:
    f.write("\n".join(lines))
