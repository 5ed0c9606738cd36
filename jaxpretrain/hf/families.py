"""The HF model families jaxpretrain maps (BERT, RoBERTa, GPT-2): architectures and configs.

A family fixes the arrangement (post-LN bidirectional for BERT/RoBERTa, pre-LN causal for GPT-2);
an architecture adds a task head. Config translation goes both ways: an HF config.json → the
`config.model` keys, and a `ModelConfig` → the `transformers` config an export writes.
"""

from __future__ import annotations

import dataclasses

from jaxpretrain.data.common import boundary_ids
from jaxpretrain.errors import UserError
from jaxpretrain.tasks import registry


@dataclasses.dataclass(frozen=True)
class Family:
  model_type: str
  prefix: str  # base-model prefix inside task architectures ("bert.")
  base_roots: tuple[str, ...]  # first name components of a bare base model's tensors
  architectures: dict  # task name -> the HF class an export writes


# The task architectures come from the task table (`TaskSpec.hf_architectures`).
FAMILIES = {
  "bert": Family("bert", "bert.", ("embeddings.", "encoder.", "pooler."), registry.hf_architectures("bert")),
  "roberta": Family(
    "roberta", "roberta.", ("embeddings.", "encoder.", "pooler."), registry.hf_architectures("roberta")
  ),
  "gpt2": Family("gpt2", "transformer.", ("wte.", "wpe.", "h.", "ln_f."), registry.hf_architectures("gpt2")),
}

# Every architecture an import accepts → (family, the task its head serves; None = no usable head).
ARCHITECTURES = {
  "BertModel": ("bert", None),
  "RobertaModel": ("roberta", None),
  "GPT2Model": ("gpt2", None),
  # GPT-2's sequence classifier scores the last token: its transformer imports, its head does not.
  "GPT2ForSequenceClassification": ("gpt2", None),
  **registry.hf_import_only(),  # e.g. BertForPreTraining: its MLM head
}
for _name, _family in FAMILIES.items():
  ARCHITECTURES.update({arch: (_name, task) for task, arch in _family.architectures.items()})

_ACTIVATIONS = {
  "gelu": "gelu",
  "gelu_new": "gelu_new",
  "gelu_pytorch_tanh": "gelu_new",
  "relu": "relu",
  "silu": "silu",
  "swish": "silu",
}
DROPOUT_KEYS = ("hidden_dropout_prob", "attention_probs_dropout_prob")
# transformers' text-generation pipeline makes 256 new tokens unless the generation config says otherwise.
PIPELINE_NEW_TOKENS = 256


def identify(hf_config: dict, where: str) -> tuple[str, str, str | None]:
  """(family, architecture, head task) of a checkpoint's config.json.

  Args:
    hf_config: the parsed config.json.
    where: the checkpoint's name, for error messages.

  Returns:
    The family key, the architecture class name and the task its head serves (None: no head).
  """
  model_type = hf_config.get("model_type")
  if model_type not in FAMILIES:
    raise UserError(f"{where}: unsupported model_type {model_type!r}; jaxpretrain maps {', '.join(FAMILIES)}")
  architectures = hf_config.get("architectures") or [
    {"bert": "BertModel", "roberta": "RobertaModel", "gpt2": "GPT2Model"}[model_type]
  ]
  arch = architectures[0]
  if arch not in ARCHITECTURES or ARCHITECTURES[arch][0] != model_type:
    raise UserError(
      f"{where}: unsupported architecture {arch!r} for model_type {model_type!r}; "
      f"supported: {', '.join(a for a, (f, _) in ARCHITECTURES.items() if f == model_type)}"
    )
  return model_type, arch, ARCHITECTURES[arch][1]


def _activation(name, where: str) -> str:
  if name not in _ACTIVATIONS:
    raise UserError(
      f"{where}: activation {name!r} is not supported; jaxpretrain has {', '.join(sorted(set(_ACTIVATIONS.values())))}"
    )
  return _ACTIVATIONS[name]


def model_fields(hf: dict, family: str, task_name: str, where: str) -> dict:
  """The `config.model` keys that reproduce the HF architecture.

  Args:
    hf: the parsed config.json.
    family: from `identify`.
    task_name: the run's `task.name` (RoBERTa's pooler exists only for its classifier).
    where: the checkpoint's name, for error messages.

  Returns:
    {model key: value}; dropout keys included (the caller decides whether to keep the user's).
  """
  if not hf.get("tie_word_embeddings", True):
    raise UserError(f"{where}: untied output embeddings (tie_word_embeddings=false) are not supported")
  if family == "gpt2":
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
      pre_layer_norm=True,
      causal=True,
      use_pooler=False,
      position_offset=0,
    )
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
    pre_layer_norm=False,
    causal=False,
    use_pooler=True,
    position_offset=0,
  )
  if family == "roberta":
    # fairseq positions: real tokens count from padding_idx + 1 (see models/encoder.py).
    fields["position_offset"] = hf.get("pad_token_id", 1) + 1
    # RoBERTa has no pooler in its task models; our pooler stands for its classifier's dense layer.
    fields["use_pooler"] = registry.spec(task_name).hf_pooler
  return fields


def family_of(model) -> str:
  """The HF family a jaxpretrain `ModelConfig` can be written as (for export).

  Args:
    model: a `ModelConfig`.

  Returns:
    "bert", "roberta" or "gpt2".
  """
  if model.causal and model.pre_layer_norm:
    if model.type_vocab_size > 0 or model.use_pooler:
      raise UserError("no HF architecture has a causal pre-LN model with token types or a pooler (GPT-2 has neither)")
    return "gpt2"
  if not model.causal and not model.pre_layer_norm:
    return "roberta" if model.position_offset else "bert"
  raise UserError(
    f"no HF architecture matches model.causal={model.causal} with "
    f"model.pre_layer_norm={model.pre_layer_norm} (BERT/RoBERTa: False/False, GPT-2: True/True)"
  )


def architecture_for(family: str, task_name: str) -> str:
  """The HF class a run of `task_name` exports as."""
  archs = FAMILIES[family].architectures
  if task_name not in archs:
    raise UserError(
      f"a {family} model fine-tuned for task {task_name!r} has no HF architecture to export to; "
      f"{family} exports tasks {', '.join(archs)}"
    )
  return archs[task_name]


def hf_config(
  model,
  family: str,
  arch: str,
  special_ids: dict,
  *,
  num_labels: int = 0,
  label_names: list | None = None,
  problem_type: str = "",
):
  """The `transformers` config an export writes.

  Args:
    model: the run's `ModelConfig`.
    family: from `family_of`.
    arch: from `architecture_for`.
    special_ids: the tokenizer's special ids (`Tokenizer.special_ids`).
    num_labels: classifier outputs (classification / token classification), 0 otherwise.
    label_names: names of the labels, in id order, when the data had names.
    problem_type: the config's `problem_type` ("" = none, transformers' default).

  Returns:
    A `transformers.PretrainedConfig` (save it with `save_pretrained`).
  """
  import transformers

  labels = {}
  if num_labels:
    names = (
      list(label_names) if label_names and len(label_names) == num_labels else [f"LABEL_{i}" for i in range(num_labels)]
    )
    labels = dict(id2label=dict(enumerate(map(str, names))), label2id={str(n): i for i, n in enumerate(names)})
  common = dict(
    architectures=[arch],
    vocab_size=model.vocab_size,
    initializer_range=model.initializer_range,
    bos_token_id=special_ids.get("bos"),
    eos_token_id=special_ids.get("eos"),
    pad_token_id=special_ids.get("pad"),
    tie_word_embeddings=True,
    **labels,
  )
  if problem_type:
    common["problem_type"] = problem_type
  if family == "gpt2":
    # Where the run's packing starts and ends a document (`[BOS] doc [EOS]`): what generation starts
    # from and stops at. A WordPiece tokenizer has no bos/eos tokens: its [CLS]/[SEP] stand in.
    common["bos_token_id"], common["eos_token_id"] = boundary_ids(special_ids)
    return transformers.GPT2Config(
      n_embd=model.hidden_size,
      n_layer=model.num_hidden_layers,
      n_head=model.num_attention_heads,
      n_inner=model.intermediate_size,
      n_positions=model.max_position_embeddings,
      activation_function=model.hidden_act,
      resid_pdrop=model.hidden_dropout_prob,
      embd_pdrop=model.hidden_dropout_prob,
      attn_pdrop=model.attention_probs_dropout_prob,
      layer_norm_epsilon=model.layer_norm_eps,
      **common,
    )
  if family == "roberta":
    if special_ids.get("pad") != model.position_offset - 1:
      # HF RoBERTa numbers positions from `input_ids != pad_token_id`: the two must agree.
      raise UserError(
        f"model.position_offset={model.position_offset} needs the padding id "
        f"{model.position_offset - 1}, but the tokenizer pads with {special_ids.get('pad')}"
      )
  config_class = transformers.RobertaConfig if family == "roberta" else transformers.BertConfig
  return config_class(
    hidden_size=model.hidden_size,
    num_hidden_layers=model.num_hidden_layers,
    num_attention_heads=model.num_attention_heads,
    intermediate_size=model.intermediate_size,
    max_position_embeddings=model.max_position_embeddings,
    type_vocab_size=max(model.type_vocab_size, 1),
    hidden_act=model.hidden_act,
    hidden_dropout_prob=model.hidden_dropout_prob,
    attention_probs_dropout_prob=model.attention_probs_dropout_prob,
    layer_norm_eps=model.layer_norm_eps,
    **common,
  )


def max_input_length(model) -> int:
  """The most tokens one input may have: the exported tokenizer's `model_max_length`.

  Args:
    model: a `ModelConfig`.

  Returns:
    `max_position_embeddings` less `position_offset` (RoBERTa numbers its first token
    padding_idx + 1, so a checkpoint with 514 positions takes 512 tokens).
  """
  return model.max_position_embeddings - model.position_offset


def generation_config(model, special_ids: dict):
  """The generation_config.json of a causal-LM export.

  Generation starts and stops at the document boundaries of the run's packing, and makes at most
  a quarter of the positions (and at most the pipeline's 256) new tokens: the text-generation
  pipeline's own 256 would run past a small model's positions on any prompt, and its
  `handle_long_generation="hole"` (how it takes a prompt longer than the model) needs a
  `max_new_tokens` to know how much of the prompt to keep.

  Args:
    model: the run's `ModelConfig`.
    special_ids: the tokenizer's special ids (`Tokenizer.special_ids`).

  Returns:
    A `transformers.GenerationConfig` (save it with `save_pretrained`).
  """
  import transformers

  bos, eos = boundary_ids(special_ids)
  return transformers.GenerationConfig(
    bos_token_id=bos,
    eos_token_id=eos,
    pad_token_id=special_ids.get("pad"),
    max_new_tokens=min(PIPELINE_NEW_TOKENS, max(1, max_input_length(model) // 4)),
  )
