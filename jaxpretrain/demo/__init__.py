"""`jaxpretrain demo --workdir=DIR`: does pretraining pay off? The whole story on the embedded data.

1. prepare: generate the embedded corpus, train a WordPiece tokenizer, pack ArrayRecord shards;
2. pretrain a small BERT with MLM (`loop.run`, checkpoints in DIR/pretrain);
3. fine-tune its encoder on N, 2N, 4N, 8N labeled reviews, `demo.seeds` seeds each;
4. the same architecture from scratch on the same examples (same tokenizer, steps and recipe);
5. the VSM baseline (LSA word vectors from the same corpus + logistic regression) on them too;
6. DIR/demo.json (mean/std test accuracy per method and budget, seconds per phase), DIR/report.md
   and PNG plots; the time of each phase is printed at the end.

Fine-tuning runs go through the same jitted `train_step` as pretraining (`demo.sweep.Sweep`),
compiled once for all of them; each labeled sample is encoded once for both methods, and the
pretrained encoder is read from its checkpoint once. A seed fixes a run's labeled sample, its
initialization and its batch order; all runs are scored on one fixed test split.
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
PHASES = ("prepare", "pretrain", "finetune", "vsm", "report")  # demo.json "seconds", in order, then "total"
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
  """`[demo 01:23] message` lines on stderr, timed from the start of the demo, and the time of each
  phase (`lap`): the phases follow each other, so their seconds add up to the total."""

  def __init__(self):
    self.start = time.perf_counter()
    self.phases: dict[str, float] = {}
    self._last = 0.0

  def elapsed(self) -> float:
    return time.perf_counter() - self.start

  def lap(self, phase: str) -> float:
    """Ends `phase` now: its seconds are those since the previous phase ended (or the start)."""
    now = self.elapsed()
    self.phases[phase], self._last = now - self._last, now
    return self.phases[phase]

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
  # Test batches of demo.batch_size rows: as fast per row as 32 or 64 on 2 CPU cores, while 128 and 256
  # took 1.7x as long (2026-12-01, issue #19; larger activations fall out of the caches).
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

  Ends with the seconds of each phase (`PHASES`) on stderr, also kept in demo.json and report.md.

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
  say = Progress()
  d, budgets = config.demo, list(config.demo.budgets)
  pretrain_dir = os.path.join(workdir, "pretrain")
  os.makedirs(workdir, exist_ok=True)

  say(f"prepare: {config.data.embedded_documents} embedded documents -> tokenizer + packed shards")
  prepared = pipeline.ensure_prepared(
    config, pretrain_dir, registry.spec(config.task.name).packing, registry.tokenizer_type(config)
  )
  say.lap("prepare")
  say(
    f"pretrain: {config.model.num_hidden_layers} layers x {config.model.hidden_size}, MLM, "
    f"{config.train.steps} steps of {config.train.batch_size} x {config.data.seq_len} tokens ({prepared})"
  )
  summary = loop.run(config, pretrain_dir)
  say(
    f"pretrain: done, step {summary['step']}, train loss {_fmt(summary['train'], 'loss')}, "
    f"eval loss {_fmt(summary['eval'], 'loss')}, {say.lap('pretrain'):.0f}s"
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
  samples = {(b, s): embedded.labeled_examples("train", b, s) for b in budgets for s in range(d.seeds)}
  encoded = {key: encode(examples) for key, examples in samples.items()}  # each sample serves both methods
  test_arrays = encode(test)
  longest = max(_longest_row(a) for a in [test_arrays, *encoded.values()])
  say(
    f"fine-tune: {2 * len(samples)} runs of {d.steps} steps; reviews of up to {longest} tokens "
    f"in rows of demo.seq_len={d.seq_len}{' (full rows: longer reviews are cut)' if longest >= d.seq_len else ''}"
  )
  sweep = Sweep(ft, num_labels=len(names), steps=d.steps, eval_arrays=test_arrays)
  runs = {m: {b: [] for b in budgets} for m in METHODS}
  for b in budgets:
    for s in range(d.seeds):
      runs["pretrained"][b].append(sweep.run(encoded[b, s], seed=s, init_from=pretrain_dir)["accuracy"])
      runs["scratch"][b].append(sweep.run(encoded[b, s], seed=s)["accuracy"])
    say(
      f"fine-tune {b:>4} labels: pretrained {np.mean(runs['pretrained'][b]):.3f}, "
      f"scratch {np.mean(runs['scratch'][b]):.3f} (mean of {d.seeds} seeds)"
    )
  compiled = sweep.compilations()
  say(
    f"fine-tune: done, {say.lap('finetune'):.0f}s; train step compiled {compiled['train_step']}x, "
    f"eval step {compiled['eval_step']}x"
  )

  runs["vsm"] = vsm_accuracies(config, tokenizer, samples, test, budgets, d.seeds, say)
  say.lap("vsm")

  result = summarize(budgets, runs)
  plots = make_plots(workdir, result)
  say.lap("report")
  total = sum(say.phases.values())  # the phases follow each other from the start: their sum is the run's time
  result["seconds"] = {**{k: round(v, 1) for k, v in say.phases.items()}, "total": round(total, 1)}
  with open(os.path.join(workdir, "demo.json"), "w") as f:
    json.dump(result, f, indent=2)
  write_report(workdir, result, runs, summary, config, plots, smoke=smoke)
  for claim, ok in targets(result).items():
    say(f"target: {claim}: {'yes' if ok else 'no'}{SMOKE_NOTE if smoke else ''}")
  say(f"wrote {os.path.join(workdir, 'demo.json')} and {os.path.join(workdir, 'report.md')}; time by phase:")
  for line in timing_table(result["seconds"], phase_notes(config, summary)):
    print(f"  {line}", file=sys.stderr, flush=True)
  return result


def _longest_row(arrays: dict) -> int:
  """Tokens in the longest encoded row (its attention mask's last real position)."""
  mask = np.asarray(arrays["attention_mask"]) != 0
  return int((mask.shape[1] - np.argmax(mask[:, ::-1], axis=1)).max(initial=0)) if mask.any() else 0


def phase_notes(config, summary: dict) -> dict[str, str]:
  """What each phase of `PHASES` did, for the timing table."""
  d = config.demo
  fits = len(d.budgets) * d.seeds
  return {
    "prepare": f"{config.data.embedded_documents} documents: tokenizer, packed shards",
    "pretrain": f"{summary['step']} MLM steps of {config.train.batch_size} x {config.data.seq_len} tokens",
    "finetune": f"{2 * fits} runs of {d.steps} steps (pretrained and scratch)",
    "vsm": f"LSA word vectors, {fits} classifiers",
    "report": "plots, demo.json, report.md",
  }


def timing_table(seconds: dict, notes: dict | None = None) -> list[str]:
  """The phase-by-phase time of a demo as markdown table lines.

  Args:
    seconds: {phase: seconds} for `PHASES` plus "total" (demo.json's "seconds").
    notes: {phase: what it did}, optional.

  Returns:
    The lines: one row per phase with its seconds and share of the total, then the total.
  """
  notes = notes or {}
  total = seconds["total"]
  lines = ["| phase | seconds | share | what |", "|---|---:|---:|---|"]
  for phase in PHASES:
    share = seconds[phase] / total if total > 0 else 0.0
    lines.append(f"| {phase} | {seconds[phase]:.1f} | {share:.0%} | {notes.get(phase, '')} |")
  minutes, rest = divmod(total, 60)
  lines.append(f"| total | {total:.1f} | 100% | {int(minutes)} min {rest:.0f} s |")
  return lines


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


def make_plots(workdir: str, result: dict) -> tuple[str, str]:
  """DIR/pretrain_loss.png and DIR/accuracy_vs_labels.png; returns their paths."""
  from jaxpretrain.commands import plot
  from jaxpretrain.train.metrics import read_metrics

  loss_png = plot.loss_plot(
    read_metrics(os.path.join(workdir, "pretrain")),
    os.path.join(workdir, "pretrain_loss.png"),
    title="MLM pretraining loss",
  )
  return loss_png, plot.accuracy_vs_labels(result, os.path.join(workdir, "accuracy_vs_labels.png"))


def write_report(
  workdir: str, result: dict, runs: dict, summary: dict, config, plots: tuple[str, str], *, smoke: bool = False
) -> None:
  """DIR/report.md with the results table, the two targets, the setup, the time by phase and the plots."""
  loss_png, acc_png = plots
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
    "",
    "## Time by phase",
    "",
    *timing_table(result["seconds"], phase_notes(config, summary)),
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
