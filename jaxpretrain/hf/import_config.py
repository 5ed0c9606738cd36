"""config.json of an HF checkpoint → the `config.model` (and `config.task`) keys that reproduce it.

Whatever config.json says that jaxpretrain cannot compute (a RoPE scaling type, biases ModernBERT
and Llama checkpoints rarely have, an irregular pattern of local layers, ...) is a one-line error
naming the field.
"""

from __future__ import annotations

import dataclasses

from jaxpretrain.errors import UserError
from jaxpretrain.hf.families import FAMILIES
from jaxpretrain.models import families as model_families
from jaxpretrain.models.config import ARCHITECTURE_KEYS, ModelConfig
from jaxpretrain.tasks import registry

_ACTIVATIONS = {
  "gelu": "gelu",
  "gelu_new": "gelu_new",
  "gelu_pytorch_tanh": "gelu_new",
  "relu": "relu",
  "silu": "silu",
  "swish": "silu",
}
DROPOUT_KEYS = ("hidden_dropout_prob", "attention_probs_dropout_prob")
# ModernBERT's RoPE bases when config.json gives none (transformers' `ModernBertConfig.default_theta`).
_MODERNBERT_THETA = {"full_attention": 160_000.0, "sliding_attention": 10_000.0}


def _activation(name, where: str, field: str = "activation") -> str:
  if name not in _ACTIVATIONS:
    raise UserError(
      f"{where}: {field} {name!r} is not supported; jaxpretrain has {', '.join(sorted(set(_ACTIVATIONS.values())))}"
    )
  return _ACTIVATIONS[name]


def _refuse(hf: dict, where: str, family: str, allowed: dict) -> None:
  """A one-line error naming the first config.json field whose value jaxpretrain cannot express.

  Args:
    hf: the parsed config.json.
    where: the checkpoint's name.
    family: its family, for the message.
    allowed: {field: (the value assumed when absent, the values jaxpretrain maps)}.
  """
  for field, (default, values) in allowed.items():
    value = hf.get(field, default)
    if value not in values:
      supported = " or ".join(repr(v) for v in values)
      raise UserError(f"{where}: {family} config {field}={value!r} is not supported (jaxpretrain maps {supported})")


def _base_fields(family: str) -> dict:
  """Every architecture switch at its plain (BERT) value, then those `family` fixes.

  An import sets them all, so a recipe written for another family leaves nothing behind.
  """
  defaults = {f.name: f.default for f in dataclasses.fields(ModelConfig) if f.name in ARCHITECTURE_KEYS}
  defaults.pop("scan_layers")  # a training choice, not the checkpoint's
  return {**defaults, **model_families.fixed(family), "family": family}


def _gpt2_fields(hf: dict, task_name: str, where: str) -> dict:
  del task_name
  unsupported = [
    k
    for k, bad in (
      ("scale_attn_weights", False),
      ("scale_attn_by_inverse_layer_idx", True),
      ("add_cross_attention", True),
    )
    if hf.get(k, not bad) == bad
  ]
  if unsupported:
    raise UserError(f"{where}: GPT-2 option {unsupported[0]}={hf[unsupported[0]]} is not supported")
  return dict(
    vocab_size=hf["vocab_size"],
    hidden_size=hf["n_embd"],
    num_hidden_layers=hf["n_layer"],
    num_attention_heads=hf["n_head"],
    intermediate_size=hf.get("n_inner") or 4 * hf["n_embd"],
    max_position_embeddings=hf["n_positions"],
    type_vocab_size=0,
    hidden_act=_activation(hf.get("activation_function", "gelu_new"), where),
    hidden_dropout_prob=hf.get("resid_pdrop", 0.1),
    attention_probs_dropout_prob=hf.get("attn_pdrop", 0.1),
    layer_norm_eps=hf.get("layer_norm_epsilon", 1e-5),
    initializer_range=hf.get("initializer_range", 0.02),
    use_pooler=False,
  )


def _bert_fields(hf: dict, task_name: str, where: str) -> dict:
  if hf.get("position_embedding_type", "absolute") != "absolute":
    raise UserError(
      f"{where}: position_embedding_type={hf['position_embedding_type']!r} is not supported (only absolute)"
    )
  if hf.get("is_decoder") or hf.get("add_cross_attention"):
    raise UserError(f"{where}: decoder BERT/RoBERTa (is_decoder / add_cross_attention) is not supported")
  fields = dict(
    vocab_size=hf["vocab_size"],
    hidden_size=hf["hidden_size"],
    num_hidden_layers=hf["num_hidden_layers"],
    num_attention_heads=hf["num_attention_heads"],
    intermediate_size=hf["intermediate_size"],
    max_position_embeddings=hf["max_position_embeddings"],
    type_vocab_size=hf.get("type_vocab_size", 2),
    hidden_act=_activation(hf.get("hidden_act", "gelu"), where),
    hidden_dropout_prob=hf.get("hidden_dropout_prob", 0.1),
    attention_probs_dropout_prob=hf.get("attention_probs_dropout_prob", 0.1),
    layer_norm_eps=hf.get("layer_norm_eps", 1e-12),
    initializer_range=hf.get("initializer_range", 0.02),
    use_pooler=True,
  )
  if hf.get("model_type") == "roberta":
    # fairseq positions: real tokens count from padding_idx + 1 (see models/encoder.py).
    fields["position_offset"] = hf.get("pad_token_id", 1) + 1
    # RoBERTa has no pooler in its task models; our pooler stands for its classifier's dense layer.
    fields["use_pooler"] = registry.spec(task_name).hf_pooler
  return fields


def _rope_theta(params, where: str, field: str, default: float) -> float:
  """The base of one plain-RoPE parameter set (`rope_parameters` / a legacy `rope_scaling`)."""
  params = params or {}
  if not isinstance(params, dict):
    raise UserError(f"{where}: {field}={params!r} is not supported (expected an object)")
  kind = params.get("rope_type", params.get("type", "default"))
  if kind != "default":
    raise UserError(f"{where}: {field}.rope_type={kind!r} is not supported (jaxpretrain has plain RoPE: 'default')")
  return float(params.get("rope_theta", default))


def _head_size(hf: dict, where: str) -> None:
  head_dim = hf.get("head_dim")
  if head_dim is not None and head_dim * hf["num_attention_heads"] != hf["hidden_size"]:
    raise UserError(
      f"{where}: head_dim={head_dim} is not supported: jaxpretrain's head size is hidden_size / "
      f"num_attention_heads = {hf['hidden_size'] / hf['num_attention_heads']:g}"
    )


def _llama_fields(hf: dict, task_name: str, where: str) -> dict:
  del task_name
  _refuse(hf, where, "llama", {"attention_bias": (False, (False,)), "mlp_bias": (False, (False,))})
  _head_size(hf, where)
  if hf.get("rope_parameters") is not None:
    theta = _rope_theta(hf["rope_parameters"], where, "rope_parameters", 10_000.0)
  else:  # transformers 4's fields
    _rope_theta(hf.get("rope_scaling"), where, "rope_scaling", 0.0)
    theta = float(hf.get("rope_theta", 10_000.0))
  heads = hf["num_attention_heads"]
  kv_heads = hf.get("num_key_value_heads") or heads
  return dict(
    vocab_size=hf["vocab_size"],
    hidden_size=hf["hidden_size"],
    num_hidden_layers=hf["num_hidden_layers"],
    num_attention_heads=heads,
    num_key_value_heads=0 if kv_heads == heads else kv_heads,
    intermediate_size=hf["intermediate_size"],
    max_position_embeddings=hf["max_position_embeddings"],
    hidden_act=_activation(hf.get("hidden_act", "silu"), where, "hidden_act"),
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=hf.get("attention_dropout", 0.0),
    layer_norm_eps=hf.get("rms_norm_eps", 1e-6),
    initializer_range=hf.get("initializer_range", 0.02),
    rope_theta=theta,
    tie_word_embeddings=bool(hf.get("tie_word_embeddings", False)),
  )


def _global_every(hf: dict, where: str) -> int:
  """ModernBERT's `global_attn_every_n_layers`, checked against `layer_types` when it has them."""
  layers = hf["num_hidden_layers"]
  types = hf.get("layer_types")
  if not types:
    return int(hf.get("global_attn_every_n_layers", 3))
  unknown = [t for t in types if t not in ("full_attention", "sliding_attention")]
  if unknown or len(types) != layers:
    raise UserError(f"{where}: modernbert config layer_types={types!r} is not supported")
  full = [i for i, t in enumerate(types) if t == "full_attention"]
  every = full[1] if len(full) > 1 else max(layers, 1)
  if [("full_attention" if i % every == 0 else "sliding_attention") for i in range(layers)] != types:
    raise UserError(
      f"{where}: modernbert config layer_types={types!r} is not supported: jaxpretrain needs a global "
      "(full_attention) layer every n-th layer from layer 0 and sliding_attention elsewhere"
    )
  return every


def _modernbert_fields(hf: dict, task_name: str, where: str) -> dict:
  del task_name
  hidden_act = hf.get("hidden_activation", hf.get("hidden_act", "gelu"))
  _refuse(
    hf,
    where,
    "modernbert",
    {
      "norm_bias": (False, (False,)),
      "attention_bias": (False, (False,)),
      "mlp_bias": (False, (False,)),
      "classifier_bias": (False, (False,)),  # the head's dense layer
      "decoder_bias": (True, (True,)),
      "classifier_pooling": ("cls", FAMILIES["modernbert"].poolings),
      # The MLM / classifier transform runs the model's activation.
      "classifier_activation": ("gelu", (hidden_act,)),
    },
  )
  _head_size(hf, where)
  rope = hf.get("rope_parameters")
  if rope is not None and ("rope_type" in rope or "rope_theta" in rope):
    rope = {"full_attention": rope, "sliding_attention": rope}  # one set for both kinds of layer
  if rope is not None:
    global_theta, local_theta = (
      _rope_theta(rope.get(kind), where, f"rope_parameters.{kind}", _MODERNBERT_THETA[kind])
      for kind in ("full_attention", "sliding_attention")
    )
  else:  # transformers 4's fields
    _rope_theta(hf.get("rope_scaling"), where, "rope_scaling", 0.0)
    global_theta = float(hf.get("global_rope_theta", _MODERNBERT_THETA["full_attention"]))
    local_theta = float(hf.get("local_rope_theta") or _MODERNBERT_THETA["sliding_attention"])
  every = _global_every(hf, where)
  window = int(hf.get("local_attention", 128)) // 2 if every > 1 else 0
  return dict(
    vocab_size=hf["vocab_size"],
    hidden_size=hf["hidden_size"],
    num_hidden_layers=hf["num_hidden_layers"],
    num_attention_heads=hf["num_attention_heads"],
    intermediate_size=hf["intermediate_size"],
    max_position_embeddings=hf["max_position_embeddings"],
    hidden_act=_activation(hidden_act, where, "hidden_activation"),
    hidden_dropout_prob=hf.get("mlp_dropout", 0.0),
    attention_probs_dropout_prob=hf.get("attention_dropout", 0.0),
    layer_norm_eps=hf.get("norm_eps", 1e-5),
    initializer_range=hf.get("initializer_range", 0.02),
    rope_theta=global_theta,
    local_rope_theta=local_theta,
    sliding_window=window,
    global_attn_every_n_layers=every if window else 1,
    tie_word_embeddings=bool(hf.get("tie_word_embeddings", True)),
  )


_FIELDS = {
  "bert": _bert_fields,
  "roberta": _bert_fields,
  "gpt2": _gpt2_fields,
  "modernbert": _modernbert_fields,
  "llama": _llama_fields,
}
# Families whose output projection is always the token embedding matrix.
_TIED_ONLY = ("bert", "roberta", "gpt2")


def model_fields(hf: dict, family: str, task_name: str, where: str) -> dict:
  """The `config.model` keys that reproduce the HF architecture.

  Args:
    hf: the parsed config.json.
    family: from `identify`.
    task_name: the run's `task.name` (RoBERTa's pooler exists only for its classifier).
    where: the checkpoint's name, for error messages.

  Returns:
    {model key: value}: every architecture key but `scan_layers`, and the dropout keys (the
    caller decides whether to keep the user's).
  """
  if family in _TIED_ONLY and not hf.get("tie_word_embeddings", True):
    raise UserError(f"{where}: untied output embeddings (tie_word_embeddings=false) are not supported for {family}")
  fields = {**_base_fields(family), **_FIELDS[family](hf, task_name, where)}
  if model_families.contradiction(fields, family):  # RoBERTa padding with an id other than 1
    fields["family"] = model_families.AUTO  # the switches alone describe it
  return fields


def task_fields(hf: dict, family: str) -> dict:
  """The `config.task` keys the checkpoint's own heads imply (ModernBERT: `classifier_pooling`).

  Args:
    hf: the parsed config.json (already accepted by `model_fields`).
    family: from `identify`.

  Returns:
    {task key: value}; the caller keeps a value the user chose.
  """
  if family == "modernbert":
    return {"pooling": hf.get("classifier_pooling", "cls")}
  return {}
