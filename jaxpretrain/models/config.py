"""`ModelConfig`: the frozen, hashable model description the flax modules take."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from jaxpretrain.errors import UserError
from jaxpretrain.models import families

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
  "family",
  "position_embedding_type",
  "rope_theta",
  "local_rope_theta",
  "norm_type",
  "norm_bias",
  "use_bias",
  "gated_mlp",
  "pre_ln_embedding_norm",
  "num_key_value_heads",
  "sliding_window",
  "global_attn_every_n_layers",
  "tie_word_embeddings",
  "classifier_transform",
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
  # The switches of the newer families (defaults = BERT; `families.FAMILIES` says what each family fixes).
  family: str = "auto"  # auto | bert | roberta | gpt2 | modernbert | llama
  position_embedding_type: str = "absolute"  # absolute | rotary
  rope_theta: float = 10000.0  # rotary base of global layers
  local_rope_theta: float = 10000.0  # rotary base of sliding-window layers
  norm_type: str = "layer_norm"  # layer_norm | rms_norm
  norm_bias: bool = True
  use_bias: bool = True  # biases of the q/k/v/o and MLP linears (and the heads' transform)
  gated_mlp: bool = False  # output(act(gate(x)) * intermediate(x)): GeGLU / SwiGLU
  pre_ln_embedding_norm: bool = False  # pre-LN: normalize the embeddings too (layer 0 then has no attention norm)
  num_key_value_heads: int = 0  # 0 = num_attention_heads; fewer = grouped-query attention
  sliding_window: int = 0  # local layers attend within |q - k| <= sliding_window; 0 = every layer global
  global_attn_every_n_layers: int = 1  # layer i is global iff i % n == 0
  tie_word_embeddings: bool = True  # the LM / MLM output projection is the token embedding matrix
  classifier_transform: bool = False  # fine-tuning heads: dense + activation + norm before the classifier

  @property
  def compute_dtype(self):
    return _DTYPES[self.dtype]

  @property
  def head_dim(self) -> int:
    return self.hidden_size // self.num_attention_heads

  @property
  def kv_heads(self) -> int:
    """Key/value heads: `num_key_value_heads`, or every query head when it is 0."""
    return self.num_key_value_heads or self.num_attention_heads

  @property
  def rotary(self) -> bool:
    return self.position_embedding_type == "rotary"

  @property
  def embedding_norm(self) -> bool:
    """The embeddings are normalized: post-LN models always, pre-LN ones with `pre_ln_embedding_norm`."""
    return not self.pre_layer_norm or self.pre_ln_embedding_norm

  def is_global(self, layer: int) -> bool:
    """Layer `layer` attends to every position (else, with `sliding_window`, to its window)."""
    return not self.sliding_window or layer % self.global_attn_every_n_layers == 0

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
    self._validate_new_switches()

  def _validate_new_switches(self) -> None:
    families.check(self)
    if self.position_embedding_type not in ("absolute", "rotary"):
      raise UserError(f"model.position_embedding_type={self.position_embedding_type!r}; choose absolute or rotary")
    if self.norm_type not in ("layer_norm", "rms_norm"):
      raise UserError(f"model.norm_type={self.norm_type!r}; choose layer_norm or rms_norm")
    if self.norm_type == "rms_norm" and self.norm_bias:
      raise UserError("model.norm_bias=true: RMSNorm has no bias; set model.norm_bias=false")
    kv = self.num_key_value_heads
    if kv < 0 or (kv and self.num_attention_heads % kv):
      raise UserError(
        f"model.num_attention_heads={self.num_attention_heads} is not divisible by model.num_key_value_heads={kv}"
      )
    if self.rotary and self.head_dim % 2:
      raise UserError(
        f"model.position_embedding_type=rotary needs an even head size; model.hidden_size / "
        f"model.num_attention_heads = {self.head_dim}"
      )
    if self.rotary and self.position_offset:
      raise UserError(f"model.position_offset={self.position_offset}: rotary positions have no offset (set 0)")
    if self.rotary and min(self.rope_theta, self.local_rope_theta) <= 0:
      raise UserError("model.rope_theta and model.local_rope_theta must be positive")
    if not 0 <= self.sliding_window < self.max_position_embeddings:
      raise UserError(
        f"model.sliding_window={self.sliding_window} must be in [0, "
        f"model.max_position_embeddings={self.max_position_embeddings})"
      )
    if self.global_attn_every_n_layers < 1:
      raise UserError(f"model.global_attn_every_n_layers={self.global_attn_every_n_layers} must be >= 1")
