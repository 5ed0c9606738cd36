"""Where an `hf:PATH_OR_ID` checkpoint lives, and reading its config and weights.

Weights are read from safetensors only, unless the user explicitly allows pickled `.bin` files
(`--allow_pickle`); those are then loaded with `torch.load(weights_only=True)`, which refuses
arbitrary pickled objects.
"""

from __future__ import annotations

import os
import re

import numpy as np

from jaxpretrain import files
from jaxpretrain.errors import UserError, first_line

SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
PICKLE = "pytorch_model.bin"
PICKLE_INDEX = "pytorch_model.bin.index.json"
# What a hub download fetches: config, tokenizer files and weights (pickles only when allowed).
_HUB_PATTERNS = ["*.json", "*.txt", "*.model", "*.safetensors"]
_HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


def strip_scheme(init_from: str) -> str:
  """`hf:PATH_OR_ID` → `PATH_OR_ID`."""
  return init_from[3:] if init_from.startswith("hf:") else init_from


def resolve(path_or_id: str, *, allow_pickle: bool = False) -> str:
  """The local directory of a HF checkpoint: a directory as given, or a Hub download.

  Args:
    path_or_id: a local HF directory, or a Hub id such as `bert-base-uncased`.
    allow_pickle: also download `.bin` weights from the Hub.

  Returns:
    The absolute path of a directory holding config.json.
  """
  if os.path.isdir(path_or_id):
    return os.path.abspath(path_or_id)
  if os.path.exists(path_or_id):
    raise UserError(f"hf:{path_or_id} is a file, expected a HF model directory")
  if path_or_id.startswith((".", "/", "~")) or not _HUB_ID.match(path_or_id):
    raise UserError(f"hf:{path_or_id}: no such directory")
  try:
    from huggingface_hub import snapshot_download

    patterns = _HUB_PATTERNS + (["*.bin"] if allow_pickle else [])
    return snapshot_download(path_or_id, allow_patterns=patterns)
  except Exception as e:  # offline, unknown id, gated repo: all the user's to fix
    raise UserError(f"hf:{path_or_id}: not a local directory, and the Hub download failed: {first_line(e)}") from None


def read_config(directory: str) -> dict:
  """The checkpoint's config.json as a dict."""
  path = os.path.join(directory, "config.json")
  if not os.path.isfile(path):
    raise UserError(f"{directory} is not a HF checkpoint: config.json not found")
  return files.read_json(path, "HF config")


def weight_files(directory: str, *, allow_pickle: bool = False) -> list[str]:
  """The weight files to read, safetensors first; pickles only when `allow_pickle`.

  Args:
    directory: the checkpoint directory.
    allow_pickle: accept `pytorch_model.bin` (and its sharded form) when there is no safetensors.

  Returns:
    Absolute paths of the files (one, or the shards of a sharded checkpoint).
  """
  for single, index in ((SAFETENSORS, SAFETENSORS_INDEX), (PICKLE, PICKLE_INDEX)):
    found = _files(directory, single, index)
    if not found:
      continue
    if single == PICKLE and not allow_pickle:
      raise UserError(
        f"{directory} has only pickled {PICKLE} weights and no {SAFETENSORS}; pass "
        f"--allow_pickle (config hf_allow_pickle=true) to load them with torch.load(weights_only=True)"
      )
    return found
  raise UserError(f"{directory} has no {SAFETENSORS} (nor a sharded {SAFETENSORS_INDEX})")


def _files(directory: str, single: str, index: str) -> list[str]:
  if os.path.isfile(os.path.join(directory, single)):
    return [os.path.join(directory, single)]
  index_path = os.path.join(directory, index)
  if not os.path.isfile(index_path):
    return []
  weight_map = files.read_json(index_path, "HF weight index").get("weight_map")
  if not isinstance(weight_map, dict):
    raise UserError(f"HF weight index {index_path} has no 'weight_map' object")
  shards = sorted(set(map(str, weight_map.values())))
  missing = [s for s in shards if not os.path.isfile(os.path.join(directory, s))]
  if missing:
    raise UserError(f"{index_path} lists shard {missing[0]}, which is missing")
  return [os.path.join(directory, s) for s in shards]


def load_tensors(directory: str, *, allow_pickle: bool = False) -> dict[str, np.ndarray]:
  """Every tensor of the checkpoint as numpy (bfloat16/float16 stay as stored).

  Args:
    directory: the checkpoint directory.
    allow_pickle: accept `.bin` weights (loaded with `torch.load(weights_only=True)`).

  Returns:
    {HF tensor name: array}.
  """
  tensors = {}
  for path in weight_files(directory, allow_pickle=allow_pickle):
    if path.endswith(".safetensors"):
      tensors.update(_load_safetensors(path))
    else:
      tensors.update(_load_pickle(path))
  return tensors


def _load_safetensors(path: str) -> dict[str, np.ndarray]:
  """The tensors of one safetensors file; a truncated or damaged file is a `UserError` naming it."""
  import ml_dtypes  # noqa: F401 (gives numpy the bfloat16 of bf16 checkpoints, as most Llama ones are)
  from safetensors.numpy import load_file

  files.check_file(path, "HF weights file")
  try:
    return load_file(path)
  except Exception as e:  # SafetensorError (bad header, truncated data), OSError
    raise UserError(f"cannot read HF weights file {path} (truncated or damaged?): {first_line(e)}") from None


def _load_pickle(path: str) -> dict[str, np.ndarray]:
  try:
    import torch
  except ImportError:
    raise UserError(f"reading {path} needs PyTorch (pip install torch), or convert it to safetensors") from None
  try:
    state = torch.load(path, map_location="cpu", weights_only=True)
  except Exception as e:  # weights_only refuses anything but tensors and containers
    raise UserError(f"cannot load {path} with torch.load(weights_only=True): {first_line(e)}") from None
  # numpy has no bfloat16 in torch's eyes: widen those to float32 before converting.
  return {
    k: (v.float() if v.dtype == torch.bfloat16 else v).numpy() for k, v in state.items() if isinstance(v, torch.Tensor)
  }
