"""Small ModernBERT and Llama `ModelConfig`s (32 wide, 4 heads, no dropout) shared by the family tests."""

from jaxpretrain.models import families
from jaxpretrain.models.config import ModelConfig

SMALL = dict(
  hidden_size=32,
  num_attention_heads=4,
  intermediate_size=48,
  vocab_size=512,
  max_position_embeddings=64,
  hidden_dropout_prob=0.0,
  attention_probs_dropout_prob=0.0,
  layer_norm_eps=1e-5,
)


def modernbert(**changes) -> ModelConfig:
  """3 layers (layer 0 global, 1 and 2 local with an 8-token window), ModernBERT's switches, then `changes`."""
  dims = {**SMALL, "num_hidden_layers": 3, "sliding_window": 8, "global_attn_every_n_layers": 3, **changes}
  return ModelConfig(family="modernbert", **families.fixed("modernbert"), **{"rope_theta": 160000.0, **dims})


def llama(**changes) -> ModelConfig:
  """2 layers, 2 key/value heads (grouped-query attention), untied output embeddings, then `changes`."""
  dims = {**SMALL, "num_hidden_layers": 2, "num_key_value_heads": 2, "hidden_act": "silu", **changes}
  return ModelConfig(family="llama", **families.fixed("llama"), **{"tie_word_embeddings": False, **dims})
