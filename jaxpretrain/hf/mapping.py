"""Tensor-by-tensor correspondence between HF state dicts and jaxpretrain parameters.

A `Rule` ties some of our parameters (canonical paths, one layer per `layer_{i}`; see `layout`)
to some HF tensors, with the exact numpy transform each way: transposes and reshapes only, so a
round trip is bit-identical. GPT-2's fused `c_attn` is one HF tensor for three of ours.

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
  part: str = "encoder"  # "encoder" | "head": head rules apply only when the tasks match


def _same(ours, hf, part="encoder"):
  return Rule((ours,), (hf,), lambda xs: xs, lambda xs: xs, part)


def _linear(ours, hf, part="encoder"):
  """nn.Linear [out, in] ↔ Dense kernel [in, out], plus the bias."""
  return [
    Rule((f"{ours}/kernel",), (f"{hf}.weight",), lambda xs: [xs[0].T], lambda xs: [xs[0].T], part),
    _same(f"{ours}/bias", f"{hf}.bias", part),
  ]


def _conv1d(ours, hf, part="encoder"):
  """GPT-2 Conv1D [in, out] ↔ Dense kernel [in, out]: the same layout."""
  return [_same(f"{ours}/kernel", f"{hf}.weight", part), _same(f"{ours}/bias", f"{hf}.bias", part)]


def _norm(ours, hf, part="encoder"):
  return [_same(f"{ours}/scale", f"{hf}.weight", part), _same(f"{ours}/bias", f"{hf}.bias", part)]


def _heads_in(ours, hf, heads, head_dim):
  """nn.Linear [heads*head_dim, hidden] ↔ kernel [hidden, heads, head_dim]; bias [heads, head_dim]."""
  return [
    Rule(
      (f"{ours}/kernel",),
      (f"{hf}.weight",),
      lambda xs: [xs[0].T.reshape(xs[0].shape[1], heads, head_dim)],
      lambda xs: [xs[0].reshape(xs[0].shape[0], -1).T],
    ),
    Rule(
      (f"{ours}/bias",), (f"{hf}.bias",), lambda xs: [xs[0].reshape(heads, head_dim)], lambda xs: [xs[0].reshape(-1)]
    ),
  ]


def _heads_out(ours, hf, heads, head_dim, conv1d=False):
  """Attention output: nn.Linear [hidden, heads*head_dim] (Conv1D: its transpose) ↔ [heads, head_dim, hidden]."""
  if conv1d:
    to_ours = lambda xs: [xs[0].reshape(heads, head_dim, xs[0].shape[1])]
    to_hf = lambda xs: [xs[0].reshape(-1, xs[0].shape[2])]
  else:
    to_ours = lambda xs: [xs[0].T.reshape(heads, head_dim, xs[0].shape[0])]
    to_hf = lambda xs: [xs[0].reshape(-1, xs[0].shape[2]).T]
  return [Rule((f"{ours}/kernel",), (f"{hf}.weight",), to_ours, to_hf), _same(f"{ours}/bias", f"{hf}.bias")]


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


def _head(family: str, task: str) -> list[Rule]:
  """The task head's rules (RoBERTa's classifier includes our pooler: its dense+tanh layer)."""
  head = registry.spec(task).hf_head  # the head's layout, from the task table
  if head == "lm_transform" and family == "bert":
    return [
      *_linear("head/transform", "cls.predictions.transform.dense", "head"),
      *_norm("head/transform_norm", "cls.predictions.transform.LayerNorm", "head"),
      _same("head/bias", "cls.predictions.bias", "head"),
    ]
  if head == "lm_transform" and family == "roberta":
    return [
      *_linear("head/transform", "lm_head.dense", "head"),
      *_norm("head/transform_norm", "lm_head.layer_norm", "head"),
      _same("head/bias", "lm_head.bias", "head"),
    ]
  if head == "sequence_classifier" and family == "roberta":
    return [
      *_linear("encoder/pooler/dense", "classifier.dense", "head"),
      *_linear("head/classifier", "classifier.out_proj", "head"),
    ]
  if head in ("sequence_classifier", "token_classifier"):
    return _linear("head/classifier", "classifier", "head")
  if head == "span":
    return _linear("head/qa_outputs", "qa_outputs", "head")
  return []  # a causal LM: the tied projection has no parameters of its own


def rules(family: str, model, task: str | None, *, pooler: bool) -> list[Rule]:
  """Every rule for a model of `family` with the head of `task`.

  Args:
    family: "bert", "roberta" or "gpt2".
    model: the `ModelConfig`.
    task: the task whose head to map (None: encoder only).
    pooler: include BERT's `bert.pooler` (BertModel / BertForSequenceClassification have one).

  Returns:
    The rules, HF names in the task-architecture form (`bert.` / `roberta.` / `transformer.` prefix).
  """
  prefix = FAMILIES[family].prefix
  if family == "gpt2":
    out = _gpt2_encoder(model, prefix)
  else:
    out = _bert_encoder(model, prefix)
    if family == "bert" and pooler and model.use_pooler:
      out += _linear("encoder/pooler/dense", f"{prefix}pooler.dense")
  return out + (_head(family, task) if task else [])


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
    if bad and rule.part == "head":
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
