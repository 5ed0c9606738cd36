"""What `init_from` names: a pretraining run directory or an HF directory, and its tokenizer."""

from __future__ import annotations

import os

from jaxpretrain.checkpoint.manager import require_run
from jaxpretrain.errors import UserError


def source_run(config) -> str:
  """The checked absolute path of a workdir `init_from`: it exists and has a complete checkpoint."""
  path = config.init_from
  if not os.path.exists(path):
    raise UserError(f"init_from={path}: no such directory")
  if not os.path.isdir(path):
    raise UserError(f"init_from={path} is a file, not a run directory")
  require_run(path).close()
  return os.path.abspath(path)


def tokenizer_dir(config) -> str:
  """The tokenizer directory of the run `init_from` names ("" without init_from).

  A fine-tune must read text exactly as the encoder was trained to, so the pretraining run's
  tokenizer wins over `data.tokenizer`. For `hf:PATH` it is the HF model directory itself.
  """
  if not config.init_from:
    return ""
  if config.init_from.startswith("hf:"):
    return config.data.tokenizer or config.init_from[len("hf:") :]
  run = source_run(config)
  path = os.path.join(run, "tokenizer")
  if not os.path.isdir(path):
    raise UserError(f"init_from={config.init_from} has no tokenizer/ directory")
  return path
