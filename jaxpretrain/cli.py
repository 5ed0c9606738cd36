"""`jaxpretrain SUBCOMMAND --config=configs/NAME.py [--config.KEY=VALUE ...] --workdir=DIR`.

Flag parsing only: each subcommand calls one library function. A `UserError` anywhere becomes
one line on stderr and exit status 2, with no traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from jaxpretrain import paths
from jaxpretrain.errors import StoppedBeforeTraining, UserError, storage_failure


def _split_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
  """Separates `--config.KEY=VALUE` (or `--config.KEY VALUE`) overrides from the other flags."""
  rest, overrides = [], []
  i = 0
  while i < len(argv):
    arg = argv[i]
    if arg.startswith("--config."):
      if "=" in arg:
        overrides.append(arg[2:])
      elif i + 1 < len(argv):
        overrides.append(f"{arg[2:]}={argv[i + 1]}")
        i += 1
      else:
        raise UserError(f"{arg} needs a value")
    else:
      rest.append(arg)
    i += 1
  return rest, overrides


def load_config(args, overrides):
  """The config of `--config` (or WORKDIR/config.json for commands on an existing run) + overrides."""
  from jaxpretrain import config as config_lib

  if getattr(args, "config", None):
    config = config_lib.load(args.config)
  elif getattr(args, "workdir", None) and paths.exists(paths.join(args.workdir, "config.json")):
    config = config_lib.load_saved(args.workdir)
  else:
    raise UserError("--config is required (e.g. --config=configs/tiny.py)")
  config_lib.apply_overrides(config, overrides)
  return config


def _distributed(args) -> None:
  from jaxpretrain.parallel import distributed

  distributed.initialize(args.coordinator_address, args.num_processes, args.process_id)


def cmd_prepare(args, overrides):
  from jaxpretrain.config_schema import validate
  from jaxpretrain.data.pretrain import pipeline
  from jaxpretrain.tasks import registry

  config = load_config(args, overrides)
  validate(config)
  registry.check_run(config, args.workdir)  # paths of the wrong kind or unwritable: one line, nothing written
  out = pipeline.prepared_dir(config, args.workdir)
  meta = pipeline.prepare_from_config(
    config,
    out,
    registry.packing(config),
    shard_index=args.shard_index,
    num_shards=args.num_shards,
    tokenizer_type=registry.tokenizer_type(config),
  )
  print(json.dumps({"prepared_dir": out, **{k: meta[k] for k in ("seq_len", "splits") if k in meta}}))


def cmd_train(args, overrides):
  from jaxpretrain.train import loop

  _distributed(args)
  if getattr(args, "allow_pickle", False):
    overrides = [*overrides, "hf_allow_pickle=true"]
  config = load_config(args, overrides)
  summary = loop.run(config, args.workdir)
  if args.command == "finetune":
    import jax

    if jax.process_index() == 0:
      from jaxpretrain.commands import report as run_report

      summary["report"] = run_report.write(args.workdir, summary)
  print(json.dumps(summary))


def cmd_checkpoints(args, overrides):
  from jaxpretrain import checkpoint as checkpoint_lib

  rows = checkpoint_lib.describe(args.workdir)
  if args.json:
    print(json.dumps(rows))
    return
  print(f"{'step':>8}  {'state':<10}  {'size':>9}  metrics")
  for r in rows:
    metrics = " ".join(f"{k}={v:.4g}" for k, v in sorted(r["metrics"].items()) if isinstance(v, (int, float)))
    print(f"{r['step']:>8}  {r['state']:<10}  {r['bytes'] / 2**20:>7.1f}MB  {metrics or r['problem'] or ''}")


def cmd_bench(args, overrides):
  if args.compare and "XLA_PYTHON_CLIENT_PREALLOCATE" not in os.environ:
    # PyTorch shares the GPU in this process: JAX must not grab 75% of its memory up front.
    # Documented in `bench --help` (--compare); the one-line error contract keeps stderr quiet.
    os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
  from jaxpretrain.commands import bench

  config = load_config(args, overrides)
  print(
    json.dumps(
      bench.run(
        config,
        steps=args.steps,
        warmup=args.warmup,
        rounds=args.rounds,
        compare=args.compare,
        profile_dir=args.profile_dir,
        profile_steps=args.profile_steps,
      )
    )
  )


def cmd_export(args, overrides):
  from jaxpretrain.hf import export_run

  if overrides:
    raise UserError(f"export takes no config overrides (got {overrides[0]})")
  print(json.dumps(export_run(args.workdir, args.out, args.step, overwrite=args.overwrite)))


def cmd_evaluate(args, overrides):
  import jax

  from jaxpretrain.commands import report as run_report
  from jaxpretrain.commands.evaluate import evaluate
  from jaxpretrain.tasks import registry

  config = load_config(args, overrides)
  result = evaluate(config, args.workdir, step=args.step)
  # A fine-tuning run's report is rewritten with what was just scored: every `finetune` run has one,
  # and runs on labeled data get one; pretraining runs leave reports to the demo.
  has_report = paths.isfile(paths.join(args.workdir, "report.md"))
  if jax.process_index() == 0 and (has_report or registry.spec(config.task.name).labeled is not None):
    run_report.write(args.workdir, evaluation=result, config=config)
  print(json.dumps(result))  # eval.json's content


def cmd_suite(args, overrides):
  from jaxpretrain.commands import suite

  result = suite.run(
    args.suite, args.init_from, args.workdir, tasks=args.tasks, data_dir=args.data_dir, overrides=overrides
  )
  print(json.dumps(result))  # suite.json's content


def cmd_generate(args, overrides):
  from jaxpretrain.commands.generate import generate

  if overrides:
    raise UserError(f"generate takes no config overrides (got {overrides[0]})")
  print(
    json.dumps(
      generate(
        args.workdir,
        args.prompt or [],
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
        step=args.step,
      )
    )
  )


def cmd_demo(args, overrides):
  from jaxpretrain import demo

  if not args.config:
    args.config = "demo"
  config = load_config(args, [*(f"{k}={v}" for k, v in demo.SMALL.items() if args.small), *overrides])
  print(json.dumps(demo.run(config, args.workdir, smoke=args.small)))


def cmd_plot(args, overrides):
  from jaxpretrain.commands import plot

  if overrides:
    raise UserError(f"plot takes no config overrides (got {overrides[0]})")
  print(json.dumps({"plots": plot.plot_run(args.workdir)}))


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
  """Shows an option's default when it has a meaningful one (not None, False or "")."""

  def _get_help_string(self, action):
    text = action.help or ""
    default = action.default
    if (
      action.option_strings
      and default is not None
      and default is not False
      and default != ""
      and default is not argparse.SUPPRESS
      and "%(default)" not in text
    ):
      text += " (default: %(default)s)"
    return text


CONFIG_EPILOG = """\
--config is needed to start a run: a file (configs/tiny.py) or a shipped name (tiny). On a run
that exists, WORKDIR/config.json is used unless --config is given.
Any config key can be changed with --config.KEY=VALUE, e.g.
  --config.train.steps=10 --config.model.dtype=bfloat16 --config.data.train=corpus.txt
An unknown key or a value out of range is an error before anything is written. Every key, its
default and its allowed values: docs/configuration.md."""


SUITE_EPILOG = """\
Each task fine-tunes in WORKDIR/TASK with its shipped config (configs/glue/TASK.py: the BERT paper's
recipe) and is scored on its validation split(s) with the official metrics. --config.KEY=VALUE
applies to every task's config, e.g. --config.train.num_epochs=2. Running it again skips the tasks
WORKDIR/suite.json holds and resumes an interrupted one. See docs/suite.md."""


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="jaxpretrain", description=__doc__.splitlines()[0])
  sub = parser.add_subparsers(dest="command", required=True)

  def command(name, fn, help_text, *, workdir=True, config=True, distributed=False):
    p = sub.add_parser(
      name,
      help=help_text,
      description=help_text,
      epilog=CONFIG_EPILOG if config else None,
      formatter_class=_HelpFormatter,
    )
    if config:
      p.add_argument("--config", help="config file or name; needed for a new run (see below)")
    if workdir:
      p.add_argument("--workdir", required=True, help="run directory")
    if distributed:
      p.add_argument(
        "--coordinator_address", default="", help="host:port of process 0 (multi-host; see docs/launching.md)"
      )
      p.add_argument("--num_processes", type=int, default=0, help="processes in the job (0 = one, or detected)")
      p.add_argument("--process_id", type=int, default=-1, help="this process's index (-1 = detected)")
    p.set_defaults(fn=fn)
    return p

  p = command("prepare", cmd_prepare, "tokenize and pack a corpus into ArrayRecord shards")
  p.add_argument("--shard_index", type=int, default=0, help="this worker's share (e.g. SLURM_ARRAY_TASK_ID)")
  p.add_argument("--num_shards", type=int, default=1, help="workers preparing the corpus together")
  for name, text in (
    ("pretrain", "pretrain (MLM or causal LM); resumes if WORKDIR has checkpoints"),
    ("finetune", "fine-tune a task head (init_from=PRETRAIN_WORKDIR or hf:PATH_OR_ID)"),
  ):
    p = command(name, cmd_train, text, distributed=True)
    p.add_argument(
      "--allow_pickle",
      action="store_true",
      help="init_from=hf:...: accept pickled pytorch_model.bin (torch.load(weights_only=True))",
    )
  p = command(
    "export", cmd_export, "write a run's checkpoint as a Hugging Face (PyTorch) model directory", config=False
  )
  p.add_argument(
    "--out", required=True, help="the HF directory to write: new or empty, else see --overwrite; never a run directory"
  )
  p.add_argument(
    "--step", type=int, default=None, help="checkpoint step (default: the newest that loads; a corrupt one is skipped)"
  )
  p.add_argument(
    "--overwrite",
    action="store_true",
    help="replace a non-empty --out whole (written beside it, then swapped in; none of its old files remain)",
  )
  p = command("checkpoints", cmd_checkpoints, "list a run's checkpoints: step, state, size, metrics", config=False)
  p.add_argument("--json", action="store_true", help="one JSON list instead of a table")
  p = command("bench", cmd_bench, "time the training step on synthetic batches; prints one JSON line", workdir=False)
  p.add_argument("--steps", type=int, default=20, help="timed steps")
  p.add_argument("--warmup", type=int, default=2, help="untimed steps after compilation")
  p.add_argument("--rounds", type=int, default=3, help="timing rounds (the median is reported)")
  p.add_argument(
    "--compare",
    default="",
    help="hf-torch: also time HF transformers (PyTorch) on the same dims (sets XLA_PYTHON_CLIENT_PREALLOCATE=false)",
  )
  p.add_argument("--profile_dir", default="", help="also trace --profile_steps steps after timing (jax.profiler) here")
  p.add_argument("--profile_steps", type=int, default=3, help="steps to trace with --profile_dir")
  p = command(
    "evaluate", cmd_evaluate, "score a run's best (or latest) checkpoint on its eval data -> WORKDIR/eval.json"
  )
  p.add_argument("--step", type=int, default=-1, help="checkpoint step (default: best by eval.metric, else latest)")
  p = command(
    "suite",
    cmd_suite,
    "fine-tune and score every task of a downstream suite (GLUE) -> WORKDIR/suite.json, suite.md",
    config=False,
  )
  p.epilog = SUITE_EPILOG
  p.add_argument("--suite", default="glue", help="the suite's name (tasks/suites.py)")
  p.add_argument(
    "--init_from", default="", help="what every task starts from: a pretraining run, an HF directory or hf:HUB_ID"
  )
  p.add_argument("--tasks", default="", help="comma-separated tasks, e.g. cola,sst2 (default: all of the suite)")
  p.add_argument(
    "--data_dir", default="", help="read task T from DATA_DIR/T (a DatasetDict.save_to_disk) instead of the Hub"
  )
  p = command("generate", cmd_generate, "continue prompts with a causal-LM run (KV-cached decoding)", config=False)
  p.add_argument("--prompt", action="append", help="a prompt; repeat for a batch")
  p.add_argument("--max_new_tokens", type=int, default=32, help="tokens to generate at most per prompt")
  p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature; 0 = greedy")
  p.add_argument("--top_k", type=int, default=0, help="sample among the k most likely tokens (0 = all)")
  p.add_argument("--top_p", type=float, default=1.0, help="sample within the top-p probability nucleus")
  p.add_argument("--seed", type=int, default=0, help="sampling seed")
  p.add_argument("--step", type=int, default=None, help="checkpoint step (default: the latest)")
  p = command("demo", cmd_demo, "pretrain, fine-tune at N..8N labels vs scratch vs VSM -> demo.json, report.md")
  p.add_argument("--small", action="store_true", help="a minute-sized run of the whole demo (smoke test)")
  command("plot", cmd_plot, "PNG plots of WORKDIR/metrics.jsonl (loss, learning rate, tokens/s, eval)", config=False)
  return parser


def main(argv: list[str] | None = None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  try:
    rest, overrides = _split_overrides(argv)
    args = build_parser().parse_args(rest)
    args.fn(args, overrides)
  except UserError as e:
    print(f"jaxpretrain: error: {e}", file=sys.stderr)
    return 2
  except StoppedBeforeTraining as e:
    print(
      f"jaxpretrain: {e or 'SIGTERM'} before training started: nothing was trained yet; "
      "run the same command to start again",
      file=sys.stderr,
    )
    return 0
  except KeyboardInterrupt:
    print(
      "jaxpretrain: interrupted without saving; checkpoints already written are kept (the same command resumes "
      "from the latest)",
      file=sys.stderr,
    )
    return 130
  except BrokenPipeError:
    # `jaxpretrain checkpoints --json | head`: the reader has what it wanted. Point stdout at
    # /dev/null so that the interpreter's final flush does not raise again.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
  except Exception as e:  # a full disk (or file-size limit, read-only disk) in a write no stage names
    cause = storage_failure(e)
    if cause is None:
      raise
    print(
      f"jaxpretrain: error: {' '.join(argv[:1]) or 'jaxpretrain'} stopped, a write failed: {cause}", file=sys.stderr
    )
    return 2
  return 0


def entry_point() -> None:
  """The console script: on an error exit, leave without running interpreter shutdown, where
  library background threads (orbax writers, grain workers) would print noise after our one line.

  It also owns the process's logging: orbax logs failures from its writer threads (absl, asyncio)
  with full tracebacks, which we report ourselves as one line, so those loggers show only
  CRITICAL. `main` itself, called in-process by tests or notebooks, leaves logging alone."""
  for name in ("absl", "asyncio"):
    logging.getLogger(name).setLevel(logging.CRITICAL)
  code = main()
  if code:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
  sys.exit(code)


if __name__ == "__main__":
  entry_point()
