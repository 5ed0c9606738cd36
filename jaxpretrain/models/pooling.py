"""Stage 3: sequence pooling — BERT's [CLS] dense+tanh pooler and masked mean pooling."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from jaxpretrain.models.config import ModelConfig
from jaxpretrain.models.embeddings import normal_init


class ClsPooler(nn.Module):
  """BERT's pooler: tanh(W · h_[CLS] + b), trained by pretraining's NSP in BERT, kept for parity."""

  config: ModelConfig

  @nn.compact
  def __call__(self, hidden):
    cfg = self.config
    dense = nn.Dense(
      cfg.hidden_size,
      dtype=cfg.compute_dtype,
      name="dense",
      kernel_init=normal_init(cfg, ("embed", "embed_out")),
      bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("embed_out",)),
    )
    return jnp.tanh(dense(hidden[:, 0]))


def mean_pool(hidden, mask):
  """Average of the hidden states over non-pad tokens.

  Args:
    hidden: [batch, length, hidden].
    mask: bool or 0/1 [batch, length], true on real tokens.

  Returns:
    [batch, hidden] float32.
  """
  weights = mask.astype(jnp.float32)[..., None]
  total = jnp.sum(hidden.astype(jnp.float32) * weights, axis=1)
  return total / jnp.maximum(jnp.sum(weights, axis=1), 1.0)
