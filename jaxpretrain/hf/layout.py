"""Canonical parameter paths: one `encoder/layer_{i}/...` entry per layer, scanned or not.

With `model.scan_layers=True` the layers live stacked under `encoder/layers/block/...` with a
leading layer axis; the HF mapping speaks per layer, so this module unstacks and restacks.
"""

from __future__ import annotations

import re

import numpy as np
from flax import traverse_util

SCANNED = "encoder/layers/block/"
_LAYER = re.compile(r"^encoder/layer_(\d+)/(.*)$")


def flatten(params) -> dict:
  """{'a/b/c': leaf} of a nested params dict."""
  return traverse_util.flatten_dict(params, sep="/")


def unflatten(flat: dict) -> dict:
  return traverse_util.unflatten_dict(flat, sep="/")


def canonical_shapes(flat: dict) -> dict[str, tuple]:
  """Canonical path → shape, for a flat tree of arrays (or ShapeDtypeStructs)."""
  shapes = {}
  for path, leaf in flat.items():
    if path.startswith(SCANNED):
      rest = path[len(SCANNED) :]
      for i in range(leaf.shape[0]):
        shapes[f"encoder/layer_{i}/{rest}"] = tuple(leaf.shape[1:])
    else:
      shapes[path] = tuple(leaf.shape)
  return shapes


def to_canonical(flat: dict) -> dict[str, np.ndarray]:
  """Unstacks scanned layers: a flat tree of host arrays → canonical paths."""
  out = {}
  for path, leaf in flat.items():
    if path.startswith(SCANNED):
      rest = path[len(SCANNED) :]
      for i in range(leaf.shape[0]):
        out[f"encoder/layer_{i}/{rest}"] = np.asarray(leaf[i])
    else:
      out[path] = np.asarray(leaf)
  return out


def from_canonical(template: dict, canonical: dict) -> dict[str, np.ndarray]:
  """Values for the leaves of `template` (flat, our layout) found in `canonical`.

  A scanned leaf is filled only when every layer's entry is present.

  Returns:
    {template path: array} for the leaves that could be filled.
  """
  out = {}
  for path, leaf in template.items():
    if path.startswith(SCANNED):
      rest = path[len(SCANNED) :]
      names = [f"encoder/layer_{i}/{rest}" for i in range(leaf.shape[0])]
      if all(n in canonical for n in names):
        out[path] = np.stack([canonical[n] for n in names])
    elif path in canonical:
      out[path] = canonical[path]
  return out


def unused_paths(model) -> tuple[str, ...]:
  """Canonical paths a scanned model stacks but never reads.

  With `pre_ln_embedding_norm` (ModernBERT) layer 0 normalizes nothing before attention (HF's
  Identity, no tensor), yet scanned layers share one shape: row 0 of the stacked
  `attention_norm` exists and is unused. An export leaves it out; an import fills it with the
  norm's initial values (`placeholder`).

  Args:
    model: a `ModelConfig`.

  Returns:
    The canonical paths (possibly absent from a given tree).
  """
  if not model.pre_ln_embedding_norm:
    return ()
  return ("encoder/layer_0/attention_norm/scale", "encoder/layer_0/attention_norm/bias")


def placeholder(path: str, shape: tuple) -> np.ndarray:
  """A norm parameter at its initial value: ones for a scale, zeros for a bias."""
  return (np.ones if path.endswith("/scale") else np.zeros)(shape, np.float32)


def group(paths) -> list[str]:
  """Parameter paths (or HF tensor names) summarized by module, layers folded: both
  `encoder/layer_3/attention/query/kernel` and `..._0/...` → `encoder/layer_*/attention/query`
  (for short notes)."""
  groups = []
  for path in paths:
    module = path.rsplit("/", 1)[0] if "/" in path else path.rsplit(".", 1)[0]
    module = _LAYER.sub(r"encoder/layer_*/\2", module)
    module = re.sub(r"\.(\d+)\.", ".*.", module)  # HF names: layer index
    if module not in groups:
      groups.append(module)
  return groups
