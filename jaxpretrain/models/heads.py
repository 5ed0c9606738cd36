"""Stage 4: fully-connected task heads on top of an `EncoderOutput`.

Every head is called as `head(encoder_output, deterministic=..., **task_inputs)` so a `Model`
composes any encoder with any head.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxpretrain.models.config import ModelConfig
from jaxpretrain.models.embeddings import normal_init
from jaxpretrain.models.encoder import EncoderOutput, activation, layer_norm
from jaxpretrain.models.pooling import mean_pool


def _zeros(axes):
  return nn.with_logical_partitioning(nn.initializers.zeros, axes)


def tied_logits(hidden, table, dtype):
  """hidden @ table.T with float32 accumulation: [..., hidden] x [vocab, hidden] -> [..., vocab].

  With a 16-bit compute dtype the backward pass also multiplies in that dtype: the float32
  logits' cotangent is rounded to it before the two gradient matmuls (float32 accumulation
  throughout). Left to autodiff, the float32 cotangent promotes both backward matmuls to
  float32 GEMMs: on one H200 they took 37 of GPT-2's 107 ms per step (seq 1024, vocab 50257;
  benchmarks/RESULTS.md), several times the cost of the same matmuls in bf16.
  """
  hidden, table = hidden.astype(dtype), table.astype(dtype)
  if jnp.dtype(dtype) == jnp.dtype(jnp.float32):
    logits = _matmul_f32(hidden, table)
  else:
    logits = _matmul_f32_low_precision_grads(hidden, table)
  return nn.with_logical_constraint(logits, ("act_batch", "act_length", "act_vocab")[-logits.ndim :])


def _matmul_f32(hidden, table):
  return jnp.einsum("...d,vd->...v", hidden, table, preferred_element_type=jnp.float32)


@jax.custom_vjp
def _matmul_f32_low_precision_grads(hidden, table):
  return _matmul_f32(hidden, table)


def _low_precision_fwd(hidden, table):
  return _matmul_f32(hidden, table), (hidden, table)


def _low_precision_bwd(residuals, g):
  hidden, table = residuals
  g = g.astype(hidden.dtype)
  d_hidden = jnp.einsum("...v,vd->...d", g, table, preferred_element_type=jnp.float32)
  d_table = jnp.einsum("...v,...d->vd", g, hidden, preferred_element_type=jnp.float32)
  return d_hidden.astype(hidden.dtype), d_table.astype(table.dtype)


_matmul_f32_low_precision_grads.defvjp(_low_precision_fwd, _low_precision_bwd)


def transform(cfg: ModelConfig, hidden):
  """dense (hidden -> hidden) → activation → norm: BERT's MLM transform, ModernBERT's prediction head.

  Called inside a head's compact `__call__`: its parameters (`transform`, `transform_norm`) belong
  to that head.
  """
  h = nn.Dense(
    cfg.hidden_size,
    use_bias=cfg.use_bias,
    dtype=cfg.compute_dtype,
    name="transform",
    kernel_init=normal_init(cfg, ("embed", "embed_out")),
    bias_init=_zeros(("embed_out",)),
  )(hidden)
  return layer_norm(cfg, "transform_norm")(activation(cfg.hidden_act)(h))


def output_embedding(module: nn.Module, out: EncoderOutput):
  """The vocabulary projection [vocab, hidden]: the token embeddings, or with
  `tie_word_embeddings=False` the head's own `output_embedding` (HF `lm_head.weight` layout)."""
  cfg = module.config
  if cfg.tie_word_embeddings:
    return out.word_embeddings
  return module.param("output_embedding", normal_init(cfg, ("vocab", "embed")), (cfg.vocab_size, cfg.hidden_size))


class MLMHead(nn.Module):
  """BERT's MLM head: dense + activation + norm, then the (tied) vocabulary projection + bias.

  With `positions` [batch, k] the head runs only on those positions (gathered before the
  vocabulary projection, which dominates the head's cost); the result is [batch, k, vocab].
  The transform sits in this module (parameters `transform`, `transform_norm`).
  """

  config: ModelConfig

  @nn.compact
  def __call__(self, out: EncoderOutput, *, deterministic: bool = True, positions=None):
    cfg = self.config
    hidden = out.hidden
    if positions is not None:
      hidden = jnp.take_along_axis(hidden, positions[..., None], axis=1)
    h = transform(cfg, hidden)
    bias = self.param("bias", _zeros(("vocab",)), (cfg.vocab_size,))
    return tied_logits(h, output_embedding(self, out), cfg.compute_dtype) + bias


class CausalLMHead(nn.Module):
  """GPT-2's / Llama's LM head: the vocabulary projection (tied, or untied `output_embedding`) of the
  (already final-normed) hidden states."""

  config: ModelConfig

  @nn.compact
  def __call__(self, out: EncoderOutput, *, deterministic: bool = True):
    return tied_logits(out.hidden, output_embedding(self, out), self.config.compute_dtype)


class SequenceClassificationHead(nn.Module):
  """Pooling ([CLS] pooler, the first token, or masked mean) → (with `classifier_transform`:
  dense + activation + norm, ModernBERT's prediction head) → dropout → dense to `num_labels` logits."""

  config: ModelConfig
  num_labels: int
  pooling: str = "cls"
  dropout: float = 0.1

  @nn.compact
  def __call__(self, out: EncoderOutput, *, deterministic: bool = True):
    if self.pooling == "cls" and out.pooled is not None:
      pooled = out.pooled
    elif self.pooling == "cls":
      pooled = out.hidden[:, 0]
    else:
      pooled = mean_pool(out.hidden, out.token_mask)
    if self.config.classifier_transform:
      pooled = transform(self.config, pooled)
    pooled = nn.Dropout(self.dropout)(pooled, deterministic=deterministic)
    logits = nn.Dense(
      self.num_labels,
      dtype=self.config.compute_dtype,
      name="classifier",
      kernel_init=normal_init(self.config, ("embed", "labels")),
      bias_init=_zeros(("labels",)),
    )(pooled)
    return logits.astype(jnp.float32)


class TokenClassificationHead(nn.Module):
  """(`classifier_transform`: dense + activation + norm) → dropout → dense on every token:
  [batch, length, num_labels] logits."""

  config: ModelConfig
  num_labels: int
  dropout: float = 0.1

  @nn.compact
  def __call__(self, out: EncoderOutput, *, deterministic: bool = True):
    h = transform(self.config, out.hidden) if self.config.classifier_transform else out.hidden
    h = nn.Dropout(self.dropout)(h, deterministic=deterministic)
    logits = nn.Dense(
      self.num_labels,
      dtype=self.config.compute_dtype,
      name="classifier",
      kernel_init=normal_init(self.config, ("embed", "labels")),
      bias_init=_zeros(("labels",)),
    )(h)
    return logits.astype(jnp.float32)


class QuestionAnsweringHead(nn.Module):
  """Extractive QA: a dense layer to (start, end) logits per token, padding masked out (with
  `classifier_transform`, ModernBERT's: dense + activation + norm → dropout first)."""

  config: ModelConfig
  dropout: float = 0.0

  @nn.compact
  def __call__(self, out: EncoderOutput, *, deterministic: bool = True):
    h = out.hidden
    if self.config.classifier_transform:
      h = nn.Dropout(self.dropout)(transform(self.config, h), deterministic=deterministic)
    logits = nn.Dense(
      2,
      dtype=self.config.compute_dtype,
      name="qa_outputs",
      kernel_init=normal_init(self.config, ("embed", "labels")),
      bias_init=_zeros(("labels",)),
    )(h)
    logits = jnp.where(out.token_mask[..., None], logits.astype(jnp.float32), -1e9)
    return logits[..., 0], logits[..., 1]
