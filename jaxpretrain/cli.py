"""`jaxpretrain SUBCOMMAND --config=configs/NAME.py [--config.KEY=VALUE ...] --workdir=DIR`.

Flag parsing only: each subcommand calls one library function. A `UserError` anywhere becomes
one line on stderr and exit status 2, with no traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from jaxpretrain.errors import UserError


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
  elif getattr(args, "workdir", None) and os.path.exists(os.path.join(args.workdir, "config.json")):
    config = config_lib.load_saved(args.workdir)
  else:
    raise UserError("--config is required (e.g. --config=configs/tiny.py)")
  config_lib.apply_overrides(config, overrides)
  return config


def _distributed(args) -> None:
  from jaxpretrain.parallel import distributed
  distributed.initialize(args.coordinator_address, args.num_processes, args.process_id)


def cmd_prepare(args, overrides):
  from jaxpretrain.data import prepare as prepare_lib
  config = load_config(args, overrides)
  out = config.data.prepared_dir or os.path.join(args.workdir, "data")
  meta = prepare_lib.prepare(config.data.train, out, seq_len=config.data.seq_len, vocab_size=config.model.vocab_size,
                             tokenizer_dir=config.data.tokenizer, eval_fraction=config.data.eval_fraction,
                             embedded_documents=config.data.embedded_documents,
                             records_per_shard=config.data.records_per_shard, shard_index=args.shard_index,
                             num_shards=args.num_shards, seed=config.train.seed, progress=True)
  print(json.dumps({"prepared_dir": out, **{k: meta[k] for k in ("seq_len", "splits") if k in meta}}))


def cmd_train(args, overrides):
  from jaxpretrain.train import loop
  _distributed(args)
  config = load_config(args, overrides)
  summary = loop.run(config, args.workdir)
  print(json.dumps(summary))


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="jaxpretrain", description=__doc__.splitlines()[0])
  sub = parser.add_subparsers(dest="command", required=True)

  def command(name, fn, help_text, *, workdir=True, config=True, distributed=False):
    p = sub.add_parser(name, help=help_text)
    if config:
      p.add_argument("--config", help="config file, e.g. configs/tiny.py")
    if workdir:
      p.add_argument("--workdir", required=True, help="run directory")
    if distributed:
      p.add_argument("--coordinator_address", default="", help="host:port of process 0 (multi-host)")
      p.add_argument("--num_processes", type=int, default=0)
      p.add_argument("--process_id", type=int, default=-1)
    p.set_defaults(fn=fn)
    return p

  p = command("prepare", cmd_prepare, "tokenize and pack a corpus into ArrayRecord shards")
  p.add_argument("--shard_index", type=int, default=0, help="this worker's share (e.g. SLURM_ARRAY_TASK_ID)")
  p.add_argument("--num_shards", type=int, default=1, help="workers preparing the corpus together")
  command("pretrain", cmd_train, "pretrain (MLM or causal LM); resumes if WORKDIR has checkpoints",
          distributed=True)
  command("finetune", cmd_train, "fine-tune a task head (init_from=PRETRAIN_WORKDIR restores the encoder)",
          distributed=True)
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
  except KeyboardInterrupt:
    print("jaxpretrain: interrupted", file=sys.stderr)
    return 130
  return 0


if __name__ == "__main__":
  sys.exit(main())
