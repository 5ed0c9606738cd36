"""The HF model families jaxpretrain maps (BERT, RoBERTa, GPT-2, ModernBERT, Llama) and their architectures.

A family fixes the arrangement (`models/families.py` says which `model.*` switches: post-LN
bidirectional BERT/RoBERTa, pre-LN causal GPT-2, rotary pre-LN ModernBERT and Llama); an
architecture adds a task head. `import_config` reads a family's config.json, `export_config`
writes one.
"""

from __future__ import annotations

import dataclasses

from jaxpretrain.errors import UserError
from jaxpretrain.models import families as model_families
from jaxpretrain.tasks import registry


@dataclasses.dataclass(frozen=True)
class Family:
  """One HF model family as the mapping sees it.

  Attributes:
    model_type: config.json's `model_type`.
    prefix: base-model prefix inside task architectures ("bert.").
    base_roots: first name components of a bare base model's tensors.
    architectures: task name -> the HF class an export writes (from the task table).
    base_model: the bare architecture, assumed when config.json names none.
    pooler: its sequence classifier reads BERT's [CLS] pooler (RoBERTa: the classifier's dense layer).
    poolings: the `task.pooling` values its sequence classifier can express.
  """

  model_type: str
  prefix: str
  base_roots: tuple[str, ...]
  architectures: dict
  base_model: str
  pooler: bool = False
  poolings: tuple[str, ...] = ("cls",)


def _family(model_type, prefix, base_roots, base_model, **kwargs) -> Family:
  # The task architectures come from the task table (`TaskSpec.hf_architectures`).
  return Family(model_type, prefix, base_roots, registry.hf_architectures(model_type), base_model, **kwargs)


FAMILIES = {
  "bert": _family("bert", "bert.", ("embeddings.", "encoder.", "pooler."), "BertModel", pooler=True),
  "roberta": _family("roberta", "roberta.", ("embeddings.", "encoder.", "pooler."), "RobertaModel", pooler=True),
  "gpt2": _family("gpt2", "transformer.", ("wte.", "wpe.", "h.", "ln_f."), "GPT2Model"),
  "modernbert": _family(
    "modernbert", "model.", ("embeddings.", "layers.", "final_norm."), "ModernBertModel", poolings=("cls", "mean")
  ),
  "llama": _family("llama", "model.", ("embed_tokens.", "layers.", "norm."), "LlamaModel"),
}

# Every architecture an import accepts → (family, the task its head serves; None = no usable head).
ARCHITECTURES = {
  **{f.base_model: (name, None) for name, f in FAMILIES.items()},
  # GPT-2's sequence classifier scores the last token: its transformer imports, its head does not.
  "GPT2ForSequenceClassification": ("gpt2", None),
  **registry.hf_import_only(),  # e.g. BertForPreTraining: its MLM head
}
for _name, _family_entry in FAMILIES.items():
  ARCHITECTURES.update({arch: (_name, task) for task, arch in _family_entry.architectures.items()})


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
  architectures = hf_config.get("architectures") or [FAMILIES[model_type].base_model]
  arch = architectures[0]
  if arch not in ARCHITECTURES or ARCHITECTURES[arch][0] != model_type:
    raise UserError(
      f"{where}: unsupported architecture {arch!r} for model_type {model_type!r}; "
      f"supported: {', '.join(a for a, (f, _) in ARCHITECTURES.items() if f == model_type)}"
    )
  return model_type, arch, ARCHITECTURES[arch][1]


def family_of(model) -> str:
  """The HF family a jaxpretrain `ModelConfig` can be written as (for export).

  Args:
    model: a `ModelConfig`.

  Returns:
    A key of `FAMILIES`: `model.family`, or the family its switches match (`models.families.resolve`).
  """
  family = model_families.resolve(model)
  if (
    family is None
    and model.position_offset
    and model_families.contradiction(dataclasses.replace(model, position_offset=2), "roberta") is None
  ):
    family = "roberta"  # RoBERTa numbers from padding_idx + 1, whatever its padding id
  if family is None:
    raise UserError(
      f"no HF architecture matches these model.* switches (model.causal={model.causal}, "
      f"model.pre_layer_norm={model.pre_layer_norm}, model.position_embedding_type={model.position_embedding_type}, "
      f"model.norm_type={model.norm_type}); set model.family to one of {', '.join(FAMILIES)}"
    )
  if family == "gpt2" and model.type_vocab_size > 0:
    raise UserError("no HF architecture has a causal pre-LN model with token types (GPT-2 has none)")
  return family


def architecture_for(family: str, task_name: str) -> str:
  """The HF class a run of `task_name` exports as."""
  archs = FAMILIES[family].architectures
  if task_name not in archs:
    raise UserError(
      f"a {family} model fine-tuned for task {task_name!r} has no HF architecture to export to; "
      f"{family} exports tasks {', '.join(archs)}"
    )
  return archs[task_name]


def max_input_length(model) -> int:
  """The most tokens one input may have: the exported tokenizer's `model_max_length`.

  Args:
    model: a `ModelConfig`.

  Returns:
    `max_position_embeddings` less `position_offset` (RoBERTa numbers its first token
    padding_idx + 1, so a checkpoint with 514 positions takes 512 tokens).
  """
  return model.max_position_embeddings - model.position_offset
