"""What `init_from` names: a pretraining run directory or an HF directory, and its tokenizer."""

from __future__ import annotations

from jaxpretrain import files, paths
from jaxpretrain.checkpoint.manager import require_run
from jaxpretrain.errors import UserError, warn
from jaxpretrain.models.config import ARCHITECTURE_KEYS


def source_run(config) -> str:
  """The checked absolute path of a workdir `init_from`: it exists and has a complete checkpoint."""
  path = config.init_from
  if not paths.exists(path):
    raise UserError(f"init_from={path}: no such directory")
  if not paths.isdir(path):
    raise UserError(f"init_from={path} is a file, not a run directory")
  require_run(path).close()
  return paths.absolute(path)


def tokenizer_dir(config) -> str:
  """The tokenizer directory of the run `init_from` names ("" without init_from).

  A fine-tune must read text exactly as the encoder was trained to, so the pretraining run's
  tokenizer wins over `data.tokenizer`. For `hf:PATH` it is the HF model directory itself. A
  remote run's tokenizer is copied into a local cache first (the tokenizer library reads local files).
  """
  if not config.init_from:
    return ""
  if config.init_from.startswith("hf:"):
    return config.data.tokenizer or config.init_from[len("hf:") :]
  run = source_run(config)
  path = paths.join(run, "tokenizer")
  if not paths.isdir(path):
    raise UserError(f"init_from={config.init_from} has no tokenizer/ directory")
  return paths.local_copy(path) if paths.is_remote(path) else path


def apply_run_config(config) -> None:
  """Takes the architecture of the pretraining run `init_from` names, in place (see `adopt_architecture`).

  Args:
    config: the run config; `init_from` is a pretraining workdir (not `hf:`).

  Raises:
    UserError: the source is not a run with a config.json and a checkpoint, or an override contradicts it.
  """
  run = source_run(config)
  saved = files.read_json(paths.join(run, "config.json"), "run file")
  if not isinstance(saved.get("model"), dict):
    raise UserError(f"init_from={config.init_from}: {paths.join(run, 'config.json')} has no model section")
  changed = adopt_architecture(config, saved["model"], f"init_from={config.init_from}")
  if changed:
    warn(f"the model follows init_from={config.init_from}: {', '.join(changed)}", kind="note")


def adopt_architecture(config, source_model: dict, source: str) -> list[str]:
  """Sets `config.model`'s architecture keys to those of the model a warm start reads, in place.

  A fine-tuning recipe cannot know the size of the run it will start from, so the source's
  dimensions (`ARCHITECTURE_KEYS`) replace the recipe's, and `data.seq_len` is capped at the
  source's positions. A key the user gave as an override
  (`config.overridden_keys`) that contradicts the source is an error instead: it cannot be honoured.

  Args:
    config: the run config.
    source_model: the source's model.* values (a subset of the keys is fine).
    source: how to name the source in messages, e.g. "init_from=runs/bert".

  Returns:
    What changed, e.g. ["hidden_size 768 -> 128", "data.seq_len 256 -> 128"].

  Raises:
    UserError: naming the first overridden key whose value contradicts the source.
  """
  explicit = set(config.overridden_keys)
  changed = []
  for key in ARCHITECTURE_KEYS:
    if key not in source_model or config.model[key] == source_model[key]:
      continue
    if f"model.{key}" in explicit:
      raise UserError(
        f"model.{key}={config.model[key]!r} contradicts {source}, whose model.{key}={source_model[key]!r}; "
        "drop the override: a warm start takes the model's architecture from its source"
      )
    changed.append(f"{key} {config.model[key]!r} -> {source_model[key]!r}")
    config.model[key] = source_model[key]
  positions = config.model.max_position_embeddings - config.model.position_offset
  if config.data.seq_len > positions:
    if "data.seq_len" in explicit:
      raise UserError(f"data.seq_len={config.data.seq_len} exceeds the {positions} positions of the model of {source}")
    changed.append(f"data.seq_len {config.data.seq_len} -> {positions}")
    config.data.seq_len = positions
  return changed
