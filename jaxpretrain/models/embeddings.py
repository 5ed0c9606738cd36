"""Stage 1: token + learned absolute position + token-type embeddings, LayerNorm, dropout."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from jaxpretrain.models.config import ModelConfig


def normal_init(config: ModelConfig, axes: tuple[str, ...]):
  """BERT's truncated-normal-free N(0, initializer_range) init, carrying logical axis names."""
  return nn.with_logical_partitioning(nn.initializers.normal(config.initializer_range), axes)


class Embeddings(nn.Module):
  """Sums token, position and token-type embeddings (post-LN models normalize the sum)."""

  config: ModelConfig

  def setup(self):
    cfg = self.config
    self.word_embeddings = nn.Embed(
      cfg.vocab_size, cfg.hidden_size, name="word_embeddings", embedding_init=normal_init(cfg, ("vocab", "embed"))
    )
    self.position_embeddings = nn.Embed(
      cfg.max_position_embeddings,
      cfg.hidden_size,
      name="position_embeddings",
      embedding_init=normal_init(cfg, ("position", "embed")),
    )
    if cfg.type_vocab_size > 0:
      self.token_type_embeddings = nn.Embed(
        cfg.type_vocab_size,
        cfg.hidden_size,
        name="token_type_embeddings",
        embedding_init=normal_init(cfg, ("type", "embed")),
      )
    if not cfg.pre_layer_norm:  # pre-LN (GPT-2) normalizes inside each block instead
      self.layer_norm = nn.LayerNorm(
        epsilon=cfg.layer_norm_eps,
        name="layer_norm",
        scale_init=nn.with_logical_partitioning(nn.initializers.ones, ("norm",)),
        bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("norm",)),
      )
    self.dropout = nn.Dropout(cfg.hidden_dropout_prob)

  def __call__(self, input_ids, positions, token_type_ids, deterministic: bool):
    """Embeds a batch.

    Args:
      input_ids: int [batch, length].
      positions: int [batch, length], indices into the position table.
      token_type_ids: int [batch, length] or None (all type 0).
      deterministic: disables dropout.

    Returns:
      float [batch, length, hidden] in the compute dtype.
    """
    cfg = self.config
    x = self.word_embeddings(input_ids) + self.position_embeddings(positions)
    if cfg.type_vocab_size > 0:
      types = jnp.zeros_like(input_ids) if token_type_ids is None else token_type_ids
      x = x + self.token_type_embeddings(types)
    if not cfg.pre_layer_norm:
      x = self.layer_norm(x)
    x = self.dropout(x, deterministic=deterministic)
    return nn.with_logical_constraint(x.astype(cfg.compute_dtype), ("act_batch", "act_length", "act_embed"))

  def table(self):
    """The token embedding matrix [vocab, hidden] (tied to the MLM / LM output projection)."""
    return self.word_embeddings.embedding
