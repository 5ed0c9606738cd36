"""Stage 1: token + learned absolute position + token-type embeddings, norm, dropout; and the
rotary position embedding (RoPE) that rotary models apply to queries and keys instead of a table.

`norm` is the one place that builds a normalization layer (LayerNorm with or without bias, or
RMSNorm), so embeddings, blocks and heads follow `model.norm_type` alike.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxpretrain.models.config import ModelConfig


def normal_init(config: ModelConfig, axes: tuple[str, ...]):
  """BERT's truncated-normal-free N(0, initializer_range) init, carrying logical axis names."""
  return nn.with_logical_partitioning(nn.initializers.normal(config.initializer_range), axes)


def norm(cfg: ModelConfig, name: str, dtype=None) -> nn.Module:
  """The model's normalization layer: LayerNorm (bias per `norm_bias`) or RMSNorm.

  Statistics are computed in float32 either way.

  Args:
    cfg: the model config (`norm_type`, `norm_bias`, `layer_norm_eps`).
    name: the module name (its parameters: `scale`, and `bias` for a LayerNorm with bias).
    dtype: the output dtype (None = float32 from float32 parameters).

  Returns:
    A flax module.
  """
  scale_init = nn.with_logical_partitioning(nn.initializers.ones, ("norm",))
  if cfg.norm_type == "rms_norm":
    return nn.RMSNorm(epsilon=cfg.layer_norm_eps, dtype=dtype, name=name, scale_init=scale_init)
  return nn.LayerNorm(
    epsilon=cfg.layer_norm_eps,
    dtype=dtype,
    name=name,
    use_bias=cfg.norm_bias,
    scale_init=scale_init,
    bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("norm",)),
  )


def rotary_tables(positions, head_dim: int, theta: float):
  """cos and sin of the rotary angles, float32 [batch, length, head_dim] (HF's layout: the
  frequencies repeated over both halves of the head).

  Args:
    positions: int [batch, length].
    head_dim: the (even) head size.
    theta: the rotary base.

  Returns:
    (cos, sin).
  """
  inv_freq = 1.0 / (theta ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim))
  angles = positions.astype(jnp.float32)[..., None] * inv_freq
  angles = jnp.concatenate([angles, angles], axis=-1)
  return jnp.cos(angles), jnp.sin(angles)


def apply_rotary(x, cos, sin):
  """Rotates query or key heads by their positions' angles (HF `rotate_half`: first half / second
  half of the head, not interleaved pairs), in float32.

  Args:
    x: [batch, length, heads, head_dim].
    cos, sin: [batch, length, head_dim] from `rotary_tables`.

  Returns:
    x rotated, in x's dtype.
  """
  xf = x.astype(jnp.float32)
  half = x.shape[-1] // 2
  rotated = jnp.concatenate([-xf[..., half:], xf[..., :half]], axis=-1)
  return (xf * cos[:, :, None] + rotated * sin[:, :, None]).astype(x.dtype)


def rotary(cfg: ModelConfig, positions):
  """The rotary tables of a rotary model, {"global": (cos, sin), "local": (cos, sin)}, or None.

  Computed once per forward pass and shared by every layer; a layer picks "global" or "local"
  (sliding-window layers may rotate with their own base, `local_rope_theta`).

  Args:
    cfg: the model config.
    positions: int [batch, length] position ids (packed documents restart at 0).
  """
  if not cfg.rotary:
    return None
  tables = {"global": rotary_tables(positions, cfg.head_dim, cfg.rope_theta)}
  if cfg.sliding_window:
    tables["local"] = rotary_tables(positions, cfg.head_dim, cfg.local_rope_theta)
  return jax.tree.map(jax.lax.stop_gradient, tables)


class Embeddings(nn.Module):
  """Sums token, position (absolute models) and token-type embeddings; normalizes the sum in
  post-LN models and with `pre_ln_embedding_norm`."""

  config: ModelConfig

  def setup(self):
    cfg = self.config
    self.word_embeddings = nn.Embed(
      cfg.vocab_size, cfg.hidden_size, name="word_embeddings", embedding_init=normal_init(cfg, ("vocab", "embed"))
    )
    if not cfg.rotary:
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
    if cfg.embedding_norm:  # pre-LN (GPT-2, Llama) normalizes inside each block instead
      self.layer_norm = norm(cfg, "layer_norm")
    self.dropout = nn.Dropout(cfg.hidden_dropout_prob)

  def __call__(self, input_ids, positions, token_type_ids, deterministic: bool):
    """Embeds a batch.

    Args:
      input_ids: int [batch, length].
      positions: int [batch, length], indices into the position table (unused by rotary models).
      token_type_ids: int [batch, length] or None (all type 0).
      deterministic: disables dropout.

    Returns:
      float [batch, length, hidden] in the compute dtype.
    """
    cfg = self.config
    x = self.word_embeddings(input_ids)
    if not cfg.rotary:
      x = x + self.position_embeddings(positions)
    if cfg.type_vocab_size > 0:
      types = jnp.zeros_like(input_ids) if token_type_ids is None else token_type_ids
      x = x + self.token_type_embeddings(types)
    if cfg.embedding_norm:
      x = self.layer_norm(x)
    x = self.dropout(x, deterministic=deterministic)
    return nn.with_logical_constraint(x.astype(cfg.compute_dtype), ("act_batch", "act_length", "act_embed"))

  def table(self):
    """The token embedding matrix [vocab, hidden] (tied to the MLM / LM output projection)."""
    return self.word_embeddings.embedding
