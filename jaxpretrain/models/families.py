"""The model families (Hugging Face `model_type` names) and the block switches each one fixes.

The blocks are built from independent `model.*` switches (norm placement, causal mask, position
encoding, norm kind, biases, gated MLP, ...) whose defaults are BERT's. A family is a name for one
combination: `FAMILIES` says which switch values it fixes; the rest (sizes, activation, rotary
bases, window, GQA heads, ...) stay free. `model.family=auto` keeps the switches alone in charge and
infers the family (for the HF export) from them. Plain data: the config layer reads this table too.
"""

from __future__ import annotations

from typing import Any

from jaxpretrain.errors import UserError

AUTO = "auto"

_BERT = {
  "pre_layer_norm": False,
  "causal": False,
  "position_offset": 0,
  "position_embedding_type": "absolute",
  "norm_type": "layer_norm",
  "norm_bias": True,
  "use_bias": True,
  "gated_mlp": False,
  "num_key_value_heads": 0,
  "sliding_window": 0,
  "tie_word_embeddings": True,
  "classifier_transform": False,
}

# Family -> the model.* values it fixes, in the order `resolve` tries them.
FAMILIES: dict[str, dict[str, Any]] = {
  "bert": _BERT,
  "roberta": {**_BERT, "position_offset": 2},  # fairseq numbering: padding_idx + 1
  "gpt2": {**_BERT, "pre_layer_norm": True, "causal": True, "pre_ln_embedding_norm": False, "use_pooler": False},
  "modernbert": {
    "pre_layer_norm": True,
    "causal": False,
    "position_offset": 0,
    "position_embedding_type": "rotary",
    "norm_type": "layer_norm",
    "norm_bias": False,
    "use_bias": False,
    "gated_mlp": True,
    "pre_ln_embedding_norm": True,
    "num_key_value_heads": 0,
    "use_pooler": False,
    "type_vocab_size": 0,
    "classifier_transform": True,
  },
  "llama": {
    "pre_layer_norm": True,
    "causal": True,
    "position_offset": 0,
    "position_embedding_type": "rotary",
    "norm_type": "rms_norm",
    "norm_bias": False,
    "use_bias": False,
    "gated_mlp": True,
    "pre_ln_embedding_norm": False,
    "sliding_window": 0,
    "use_pooler": False,
    "type_vocab_size": 0,
    "classifier_transform": False,
  },
}
CHOICES = (AUTO, *FAMILIES)


def _get(model, key: str):
  return model[key] if isinstance(model, dict) or hasattr(model, "keys") else getattr(model, key)


def fixed(name: str) -> dict[str, Any]:
  """The model.* values family `name` fixes (a copy).

  Args:
    name: a key of `FAMILIES`.

  Returns:
    {model key: value}.
  """
  if name not in FAMILIES:
    raise UserError(f"model.family={name!r}; choose {', '.join(CHOICES)}")
  return dict(FAMILIES[name])


def contradiction(model, name: str) -> str | None:
  """The first key of `model` that disagrees with family `name`, as a one-line message, or None.

  Args:
    model: a `config.model` section (dict-like) or a `ModelConfig`.
    name: a key of `FAMILIES`.
  """
  for key, value in FAMILIES[name].items():
    have = _get(model, key)
    if have != value:
      return f"model.{key}={have!r} contradicts model.family={name} (which fixes model.{key}={value!r})"
  return None


def check(model) -> None:
  """Raises a one-line `UserError` for an unknown family or a switch that contradicts it.

  Args:
    model: a `config.model` section or a `ModelConfig` (with `family`).
  """
  name = _get(model, "family")
  if name == AUTO:
    return
  if name not in FAMILIES:
    raise UserError(f"model.family={name!r}; choose {', '.join(CHOICES)}")
  message = contradiction(model, name)
  if message:
    raise UserError(message)


def resolve(model) -> str | None:
  """The model's family: `model.family`, or for `auto` the first family whose fixed values all agree.

  Args:
    model: a `config.model` section or a `ModelConfig`.

  Returns:
    A key of `FAMILIES`, or None when `auto` matches none (no Hugging Face family has these switches).
  """
  name = _get(model, "family")
  if name != AUTO:
    return name
  return next((family for family in FAMILIES if contradiction(model, family) is None), None)


def apply(model_section, name: str) -> None:
  """Sets `family` and every value it fixes on a `config.model` section, in place (configs use this).

  Args:
    model_section: the `model` ConfigDict.
    name: a key of `FAMILIES`.
  """
  for key, value in fixed(name).items():
    model_section[key] = value
  model_section.family = name
