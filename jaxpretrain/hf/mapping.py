"""Tensor-by-tensor correspondence between HF state dicts and jaxpretrain parameters.

A `Rule` ties some of our parameters (canonical paths, one layer per `layer_{i}`; see `layout`)
to some HF tensors, with the exact numpy transform each way: transposes, reshapes, splits and
concatenations only, so a round trip is bit-identical. GPT-2's fused `c_attn` and ModernBERT's
`Wqkv` are one HF tensor for three of ours; ModernBERT's `Wi` is our GLU's gate and intermediate.

Conventions: HF `nn.Linear` weights are [out, in]; GPT-2 `Conv1D` weights are [in, out]; our
Dense kernels are [in, out], attention projections [hidden, heads, head_dim] and the attention
output [heads, head_dim, hidden].
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from jaxpretrain.errors import UserError
from jaxpretrain.hf.families import FAMILIES
from jaxpretrain.tasks import registry


@dataclasses.dataclass(frozen=True)
class Rule:
  ours: tuple[str, ...]  # canonical parameter paths
  hf: tuple[str, ...]  # HF tensor names (task-architecture names, prefix included)
  to_ours: Callable  # list of HF arrays -> list of our arrays
  to_hf: Callable  # list of our arrays -> list of HF arrays
  # "encoder"; "head": imported only when the checkpoint's head serves the run's task; "shared":
  # a head part every task architecture of the family has under the same name (ModernBERT's `head`).
  part: str = "encoder"


def _same(ours, hf, part="encoder"):
  return Rule((ours,), (hf,), lambda xs: xs, lambda xs: xs, part)


def _linear(ours, hf, part="encoder", bias=True):
  """nn.Linear [out, in] ↔ Dense kernel [in, out], plus the bias (when the layer has one)."""
  kernel = Rule((f"{ours}/kernel",), (f"{hf}.weight",), lambda xs: [xs[0].T], lambda xs: [xs[0].T], part)
  return [kernel, _same(f"{ours}/bias", f"{hf}.bias", part)] if bias else [kernel]


def _conv1d(ours, hf, part="encoder"):
  """GPT-2 Conv1D [in, out] ↔ Dense kernel [in, out]: the same layout."""
  return [_same(f"{ours}/kernel", f"{hf}.weight", part), _same(f"{ours}/bias", f"{hf}.bias", part)]


def _norm(ours, hf, part="encoder", bias=True):
  scale = _same(f"{ours}/scale", f"{hf}.weight", part)
  return [scale, _same(f"{ours}/bias", f"{hf}.bias", part)] if bias else [scale]


def _heads_in(ours, hf, heads, head_dim, bias=True):
  """nn.Linear [heads*head_dim, hidden] ↔ kernel [hidden, heads, head_dim]; bias [heads, head_dim]."""
  kernel = Rule(
    (f"{ours}/kernel",),
    (f"{hf}.weight",),
    lambda xs: [xs[0].T.reshape(xs[0].shape[1], heads, head_dim)],
    lambda xs: [xs[0].reshape(xs[0].shape[0], -1).T],
  )
  if not bias:
    return [kernel]
  return [
    kernel,
    Rule(
      (f"{ours}/bias",), (f"{hf}.bias",), lambda xs: [xs[0].reshape(heads, head_dim)], lambda xs: [xs[0].reshape(-1)]
    ),
  ]


def _heads_out(ours, hf, heads, head_dim, conv1d=False, bias=True):
  """Attention output: nn.Linear [hidden, heads*head_dim] (Conv1D: its transpose) ↔ [heads, head_dim, hidden]."""
  if conv1d:
    to_ours = lambda xs: [xs[0].reshape(heads, head_dim, xs[0].shape[1])]
    to_hf = lambda xs: [xs[0].reshape(-1, xs[0].shape[2])]
  else:
    to_ours = lambda xs: [xs[0].T.reshape(heads, head_dim, xs[0].shape[0])]
    to_hf = lambda xs: [xs[0].reshape(-1, xs[0].shape[2]).T]
  kernel = Rule((f"{ours}/kernel",), (f"{hf}.weight",), to_ours, to_hf)
  return [kernel, _same(f"{ours}/bias", f"{hf}.bias")] if bias else [kernel]


def _fused_qkv(ours, hf, heads, head_dim):
  """GPT-2 `c_attn` Conv1D [hidden, 3*hidden] (q|k|v) ↔ three [hidden, heads, head_dim] kernels."""
  names = [f"{ours}/{n}" for n in ("query", "key", "value")]
  return [
    Rule(
      tuple(f"{n}/kernel" for n in names),
      (f"{hf}.weight",),
      lambda xs: [w.reshape(w.shape[0], heads, head_dim) for w in np.split(xs[0], 3, axis=1)],
      lambda xs: [np.concatenate([k.reshape(k.shape[0], -1) for k in xs], axis=1)],
    ),
    Rule(
      tuple(f"{n}/bias" for n in names),
      (f"{hf}.bias",),
      lambda xs: [b.reshape(heads, head_dim) for b in np.split(xs[0], 3)],
      lambda xs: [np.concatenate([b.reshape(-1) for b in xs])],
    ),
  ]


def _fused_linear_qkv(ours, hf, heads, head_dim):
  """ModernBERT `Wqkv` nn.Linear [3*hidden, hidden] (rows q|k|v) ↔ three [hidden, heads, head_dim] kernels."""
  return Rule(
    tuple(f"{ours}/{n}/kernel" for n in ("query", "key", "value")),
    (f"{hf}.weight",),
    lambda xs: [w.T.reshape(w.shape[1], heads, head_dim) for w in np.split(xs[0], 3, axis=0)],
    lambda xs: [np.concatenate([k.reshape(k.shape[0], -1).T for k in xs], axis=0)],
  )


def _fused_glu(ours, hf):
  """ModernBERT `Wi` nn.Linear [2*F, hidden]: rows [:F] are activated (our `gate`), rows [F:] are
  the linear branch they multiply (our `intermediate`); each ↔ a Dense kernel [hidden, F]."""
  return Rule(
    (f"{ours}/gate/kernel", f"{ours}/intermediate/kernel"),
    (f"{hf}.weight",),
    lambda xs: [w.T for w in np.split(xs[0], 2, axis=0)],
    lambda xs: [np.concatenate([k.T for k in xs], axis=0)],
  )


def _bert_encoder(model, p: str) -> list[Rule]:
  h, d = model.num_attention_heads, model.head_dim
  e = "encoder/embeddings"
  rules = [
    _same(f"{e}/word_embeddings/embedding", f"{p}embeddings.word_embeddings.weight"),
    _same(f"{e}/position_embeddings/embedding", f"{p}embeddings.position_embeddings.weight"),
    *_norm(f"{e}/layer_norm", f"{p}embeddings.LayerNorm"),
  ]
  if model.type_vocab_size > 0:
    rules.append(_same(f"{e}/token_type_embeddings/embedding", f"{p}embeddings.token_type_embeddings.weight"))
  else:  # HF BERT always adds a type embedding: type 0 with a zero vector adds nothing, as ours
    rules.append(
      Rule(
        (),
        (f"{p}embeddings.token_type_embeddings.weight",),
        lambda xs: [],
        lambda xs: [np.zeros((1, model.hidden_size), np.float32)],
      )
    )
  for i in range(model.num_hidden_layers):
    ours, hf = f"encoder/layer_{i}", f"{p}encoder.layer.{i}"
    for name in ("query", "key", "value"):
      rules += _heads_in(f"{ours}/attention/{name}", f"{hf}.attention.self.{name}", h, d)
    rules += _heads_out(f"{ours}/attention/output", f"{hf}.attention.output.dense", h, d)
    rules += _norm(f"{ours}/attention_norm", f"{hf}.attention.output.LayerNorm")
    rules += _linear(f"{ours}/mlp/intermediate", f"{hf}.intermediate.dense")
    rules += _linear(f"{ours}/mlp/output", f"{hf}.output.dense")
    rules += _norm(f"{ours}/mlp_norm", f"{hf}.output.LayerNorm")
  return rules


def _gpt2_encoder(model, p: str) -> list[Rule]:
  h, d = model.num_attention_heads, model.head_dim
  rules = [
    _same("encoder/embeddings/word_embeddings/embedding", f"{p}wte.weight"),
    _same("encoder/embeddings/position_embeddings/embedding", f"{p}wpe.weight"),
    *_norm("encoder/final_norm", f"{p}ln_f"),
  ]
  for i in range(model.num_hidden_layers):
    ours, hf = f"encoder/layer_{i}", f"{p}h.{i}"
    rules += _fused_qkv(f"{ours}/attention", f"{hf}.attn.c_attn", h, d)
    rules += _heads_out(f"{ours}/attention/output", f"{hf}.attn.c_proj", h, d, conv1d=True)
    rules += _norm(f"{ours}/attention_norm", f"{hf}.ln_1")
    rules += _conv1d(f"{ours}/mlp/intermediate", f"{hf}.mlp.c_fc")
    rules += _conv1d(f"{ours}/mlp/output", f"{hf}.mlp.c_proj")
    rules += _norm(f"{ours}/mlp_norm", f"{hf}.ln_2")
  return rules


def _modernbert_encoder(model, p: str) -> list[Rule]:
  """Pre-LN with a normed embedding; layer 0's attention norm is HF's Identity (no tensor, none of ours)."""
  h, d = model.num_attention_heads, model.head_dim
  rules = [
    _same("encoder/embeddings/word_embeddings/embedding", f"{p}embeddings.tok_embeddings.weight"),
    *_norm("encoder/embeddings/layer_norm", f"{p}embeddings.norm", bias=model.norm_bias),
    *_norm("encoder/final_norm", f"{p}final_norm", bias=model.norm_bias),
  ]
  for i in range(model.num_hidden_layers):
    ours, hf = f"encoder/layer_{i}", f"{p}layers.{i}"
    if i > 0:
      rules += _norm(f"{ours}/attention_norm", f"{hf}.attn_norm", bias=model.norm_bias)
    rules.append(_fused_linear_qkv(f"{ours}/attention", f"{hf}.attn.Wqkv", h, d))
    rules += _heads_out(f"{ours}/attention/output", f"{hf}.attn.Wo", h, d, bias=False)
    rules += _norm(f"{ours}/mlp_norm", f"{hf}.mlp_norm", bias=model.norm_bias)
    rules.append(_fused_glu(f"{ours}/mlp", f"{hf}.mlp.Wi"))
    rules += _linear(f"{ours}/mlp/output", f"{hf}.mlp.Wo", bias=False)
  return rules


def _llama_encoder(model, p: str) -> list[Rule]:
  h, kv, d = model.num_attention_heads, model.kv_heads, model.head_dim
  rules = [
    _same("encoder/embeddings/word_embeddings/embedding", f"{p}embed_tokens.weight"),
    *_norm("encoder/final_norm", f"{p}norm", bias=False),
  ]
  for i in range(model.num_hidden_layers):
    ours, hf = f"encoder/layer_{i}", f"{p}layers.{i}"
    rules += _norm(f"{ours}/attention_norm", f"{hf}.input_layernorm", bias=False)
    rules += _heads_in(f"{ours}/attention/query", f"{hf}.self_attn.q_proj", h, d, bias=False)
    rules += _heads_in(f"{ours}/attention/key", f"{hf}.self_attn.k_proj", kv, d, bias=False)
    rules += _heads_in(f"{ours}/attention/value", f"{hf}.self_attn.v_proj", kv, d, bias=False)
    rules += _heads_out(f"{ours}/attention/output", f"{hf}.self_attn.o_proj", h, d, bias=False)
    rules += _norm(f"{ours}/mlp_norm", f"{hf}.post_attention_layernorm", bias=False)
    rules += _linear(f"{ours}/mlp/gate", f"{hf}.mlp.gate_proj", bias=False)
    rules += _linear(f"{ours}/mlp/intermediate", f"{hf}.mlp.up_proj", bias=False)
    rules += _linear(f"{ours}/mlp/output", f"{hf}.mlp.down_proj", bias=False)
  return rules


_ENCODERS = {
  "bert": _bert_encoder,
  "roberta": _bert_encoder,
  "gpt2": _gpt2_encoder,
  "modernbert": _modernbert_encoder,
  "llama": _llama_encoder,
}


def _output_embedding(model, hf: str) -> list[Rule]:
  """An untied output projection: HF [vocab, hidden] ↔ our `head/output_embedding` (same layout)."""
  return [] if model.tie_word_embeddings else [_same("head/output_embedding", hf, "head")]


def _modernbert_transform(model) -> list[Rule]:
  """`ModernBertPredictionHead` (dense, activation, norm) ↔ our head's transform. Every ModernBERT
  task model has it as `head`, so transformers loads an MLM checkpoint's into a classifier: so do we."""
  return [
    *_linear("head/transform", "head.dense", "shared", bias=model.use_bias),
    *_norm("head/transform_norm", "head.norm", "shared", bias=model.norm_bias),
  ]


# (family, the task's `TaskSpec.hf_head`) -> fn(model) -> the head's rules. A causal LM's head
# (None) is the tied projection; only an untied one has a tensor.
_HEADS = {
  ("bert", "lm_transform"): lambda m: [
    *_linear("head/transform", "cls.predictions.transform.dense", "head"),
    *_norm("head/transform_norm", "cls.predictions.transform.LayerNorm", "head"),
    _same("head/bias", "cls.predictions.bias", "head"),
  ],
  ("roberta", "lm_transform"): lambda m: [
    *_linear("head/transform", "lm_head.dense", "head"),
    *_norm("head/transform_norm", "lm_head.layer_norm", "head"),
    _same("head/bias", "lm_head.bias", "head"),
  ],
  # RoBERTa's classifier includes our pooler: its dense+tanh layer.
  ("roberta", "sequence_classifier"): lambda m: [
    *_linear("encoder/pooler/dense", "classifier.dense", "head"),
    *_linear("head/classifier", "classifier.out_proj", "head"),
  ],
  ("modernbert", "lm_transform"): lambda m: [
    *_modernbert_transform(m),
    _same("head/bias", "decoder.bias", "head"),
    *_output_embedding(m, "decoder.weight"),
  ],
  ("modernbert", "sequence_classifier"): lambda m: [
    *_modernbert_transform(m),
    *_linear("head/classifier", "classifier", "head"),
  ],
  ("modernbert", "token_classifier"): lambda m: [
    *_modernbert_transform(m),
    *_linear("head/classifier", "classifier", "head"),
  ],
  ("modernbert", "span"): lambda m: [*_modernbert_transform(m), *_linear("head/qa_outputs", "classifier", "head")],
  ("llama", None): lambda m: _output_embedding(m, "lm_head.weight"),
  # Every family's plain heads.
  (None, "sequence_classifier"): lambda m: _linear("head/classifier", "classifier", "head"),
  (None, "token_classifier"): lambda m: _linear("head/classifier", "classifier", "head"),
  (None, "span"): lambda m: _linear("head/qa_outputs", "qa_outputs", "head"),
  (None, None): lambda m: [],
}


def rules(family: str, model, task: str | None, *, pooler: bool) -> list[Rule]:
  """Every rule for a model of `family` with the head of `task`.

  Args:
    family: a key of `families.FAMILIES`.
    model: the `ModelConfig`.
    task: the task whose head to map (None: encoder only).
    pooler: include BERT's `bert.pooler` (BertModel / BertForSequenceClassification have one).

  Returns:
    The rules, HF names in the task-architecture form (`bert.` / `roberta.` / `transformer.` /
    `model.` prefix).
  """
  out = _ENCODERS[family](model, FAMILIES[family].prefix)
  if family == "bert" and pooler and model.use_pooler:
    out += _linear("encoder/pooler/dense", f"{FAMILIES[family].prefix}pooler.dense")
  if task is None:
    return out
  head = registry.spec(task).hf_head  # the head's layout, from the task table
  # A head no architecture of the family has maps nothing (the import starts it fresh; an export
  # never gets here: `families.architecture_for` refuses first).
  return out + (_HEADS.get((family, head)) or _HEADS.get((None, head)) or _HEADS[None, None])(model)


def normalize_keys(tensors: dict, family: str) -> dict:
  """HF tensor names in the task-architecture form: bare base models get the prefix, and the
  old TF-converted `LayerNorm.gamma/beta` names become `weight/bias` (as transformers does)."""
  fam = FAMILIES[family]
  out = {}
  for key, value in tensors.items():
    if key.startswith(fam.base_roots):
      key = fam.prefix + key
    if ".LayerNorm." in key:
      key = key.replace(".LayerNorm.gamma", ".LayerNorm.weight").replace(".LayerNorm.beta", ".LayerNorm.bias")
    out[key] = value
  return out


def to_hf(ours: dict[str, np.ndarray], rule_list: list[Rule]) -> dict[str, np.ndarray]:
  """Our canonical parameters → HF tensors (contiguous numpy), for every rule.

  Raises:
    UserError: a parameter a rule needs is missing (the run's model does not fit the architecture).
  """
  out = {}
  for rule in rule_list:
    missing = [p for p in rule.ours if p not in ours]
    if missing:
      raise UserError(f"the checkpoint has no parameter {missing[0]}, which {rule.hf[0]} needs")
    for name, value in zip(rule.hf, rule.to_hf([np.asarray(ours[p]) for p in rule.ours])):
      out[name] = np.ascontiguousarray(value)
  return out


def to_ours(tensors: dict[str, np.ndarray], rule_list: list[Rule], shapes: dict[str, tuple]) -> tuple[dict, list]:
  """HF tensors → our canonical parameters, for the rules whose tensors are all present.

  Args:
    tensors: normalized HF tensors (`normalize_keys`).
    rule_list: from `rules`.
    shapes: canonical path → the shape our model expects.

  Returns:
    ({canonical path: array}, [(rule, why it was skipped) for head rules whose shapes differ]).

  Raises:
    UserError: an encoder tensor has the wrong shape (the config does not describe the weights).
  """
  ours, skipped = {}, []
  for rule in rule_list:
    if not rule.ours or not all(k in tensors for k in rule.hf) or not all(p in shapes for p in rule.ours):
      continue
    values = rule.to_ours([tensors[k] for k in rule.hf])
    bad = [(p, v.shape) for p, v in zip(rule.ours, values) if tuple(v.shape) != tuple(shapes[p])]
    if bad and rule.part != "encoder":
      skipped.append(
        (
          rule,
          f"{rule.hf[0]} has shape {tuple(tensors[rule.hf[0]].shape)}, "
          f"the task's {bad[0][0]} needs {tuple(shapes[bad[0][0]])}",
        )
      )
      continue
    if bad:
      raise UserError(
        f"{rule.hf[0]} has shape {tuple(tensors[rule.hf[0]].shape)}, which does not fit "
        f"{bad[0][0]} {tuple(shapes[bad[0][0]])}: config.json does not describe these weights"
      )
    ours.update(zip(rule.ours, values))
  return ours, skipped
