"""`ModelConfig`: the frozen, hashable model description the flax modules take."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from jaxpretrain.errors import UserError

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


# The model.* keys that fix a model's parameters and what it computes: a warm start (`init_from`)
# takes them from its source. Dropout, dtype, attention kernel, remat and the position layout of
# packed rows are training choices and stay the fine-tune's own.
ARCHITECTURE_KEYS = (
  "vocab_size",
  "hidden_size",
  "num_hidden_layers",
  "num_attention_heads",
  "intermediate_size",
  "max_position_embeddings",
  "type_vocab_size",
  "hidden_act",
  "layer_norm_eps",
  "pre_layer_norm",
  "causal",
  "use_pooler",  # a decoder source has none, and its HF export (GPT-2) has no place for one
  "scan_layers",
  "position_offset",
)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Transformer dimensions and switches, named as in HF `BertConfig` where one exists."""

  vocab_size: int = 30522
  hidden_size: int = 768
  num_hidden_layers: int = 12
  num_attention_heads: int = 12
  intermediate_size: int = 3072
  max_position_embeddings: int = 512
  type_vocab_size: int = 2
  hidden_act: str = "gelu"
  hidden_dropout_prob: float = 0.1
  attention_probs_dropout_prob: float = 0.1
  layer_norm_eps: float = 1e-12
  initializer_range: float = 0.02
  pre_layer_norm: bool = False
  causal: bool = False
  use_pooler: bool = True
  dtype: str = "float32"
  attention: str = "xla"
  remat: str = "none"
  scan_layers: bool = False
  packed_positions: str = "restart"  # restart | continue: positions of packed documents
  position_offset: int = 0  # first position index (RoBERTa: padding_idx + 1 = 2)

  @property
  def compute_dtype(self):
    return _DTYPES[self.dtype]

  @property
  def head_dim(self) -> int:
    return self.hidden_size // self.num_attention_heads

  @classmethod
  def from_config(cls, model_section) -> ModelConfig:
    """Builds and validates a `ModelConfig` from the `config.model` section.

    Args:
      model_section: a ConfigDict (or dict) with the `model.*` keys.

    Returns:
      The validated config.
    """
    fields = {f.name for f in dataclasses.fields(cls)}
    cfg = cls(**{k: v for k, v in dict(model_section).items() if k in fields})
    cfg.validate()
    return cfg

  def validate(self) -> None:
    """Raises `UserError` naming the first inconsistent setting."""
    if self.hidden_size % self.num_attention_heads:
      raise UserError(
        f"model.hidden_size={self.hidden_size} is not divisible by model.num_attention_heads={self.num_attention_heads}"
      )
    if self.dtype not in _DTYPES:
      raise UserError(f"model.dtype={self.dtype!r}; choose one of {', '.join(_DTYPES)}")
    if self.attention not in ("xla", "cudnn", "auto"):
      raise UserError(f"model.attention={self.attention!r}; choose xla, cudnn or auto")
    if self.packed_positions not in ("restart", "continue"):
      raise UserError(f"model.packed_positions={self.packed_positions!r}; choose restart or continue")
    if self.remat not in ("none", "dots", "full"):
      raise UserError(f"model.remat={self.remat!r}; choose none, dots or full")
    if self.hidden_act not in ("gelu", "gelu_new", "relu", "silu"):
      raise UserError(f"model.hidden_act={self.hidden_act!r}; choose gelu, gelu_new, relu or silu")
    if not 0 <= self.position_offset < self.max_position_embeddings:
      raise UserError(
        f"model.position_offset={self.position_offset} must be in [0, "
        f"model.max_position_embeddings={self.max_position_embeddings})"
      )
    for name in ("vocab_size", "hidden_size", "num_hidden_layers", "intermediate_size", "max_position_embeddings"):
      if getattr(self, name) <= 0:
        raise UserError(f"model.{name} must be positive, got {getattr(self, name)}")
