"""Stage 2: the Transformer encoder (bidirectional for BERT, `causal=True` for GPT decoders).

`Encoder` runs embeddings → N blocks → (final LayerNorm for pre-LN) → optional [CLS] pooler, and
returns an `EncoderOutput` that the task heads consume. Attention masks come from `segment_ids`
(packed documents attend only within their own document; 0 marks padding) or, for unpacked
inputs, from `attention_mask`.
"""
from __future__ import annotations

import functools
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxpretrain.models.config import ModelConfig
from jaxpretrain.models.embeddings import Embeddings, normal_init
from jaxpretrain.models.pooling import ClsPooler

_ACTIVATIONS = {
    "gelu": functools.partial(jax.nn.gelu, approximate=False),  # BERT's erf GELU
    "gelu_new": functools.partial(jax.nn.gelu, approximate=True),  # GPT-2's tanh GELU
    "relu": jax.nn.relu,
    "silu": jax.nn.silu,
}


def activation(name: str):
  """The activation function called `name` in HF configs."""
  return _ACTIVATIONS[name]


@flax.struct.dataclass
class EncoderOutput:
  hidden: jax.Array            # [batch, length, hidden], compute dtype
  pooled: Any                  # [batch, hidden] from the [CLS] pooler, or None
  token_mask: jax.Array        # bool [batch, length], true on real (non-pad) tokens
  word_embeddings: jax.Array   # [vocab, hidden] float32, for tied output projections


def attention_mask_from(segment_ids=None, attention_mask=None, length=None, batch=None):
  """Builds the boolean attention mask [batch, 1, q_len, kv_len] and the token mask.

  Args:
    segment_ids: int [batch, length]; equal non-zero ids attend to each other, 0 is padding.
    attention_mask: 0/1 [batch, length] for unpacked inputs (used when segment_ids is None).
    length, batch: the shape when neither is given (everything attends to everything).

  Returns:
    (mask [batch, 1, length, length] bool, token_mask [batch, length] bool).
  """
  if segment_ids is not None:
    tokens = segment_ids != 0
    mask = (segment_ids[:, :, None] == segment_ids[:, None, :]) & tokens[:, None, :]
  elif attention_mask is not None:
    tokens = attention_mask.astype(bool)
    mask = jnp.broadcast_to(tokens[:, None, :], tokens.shape + tokens.shape[-1:])
  else:
    tokens = jnp.ones((batch, length), bool)
    return None, tokens
  return mask[:, None], tokens


def dot_product_attention(q, k, v, mask, *, causal: bool, implementation: str, dropout_rate: float,
                          dropout_rng, deterministic: bool):
  """Multi-head attention over [batch, length, heads, head_dim] inputs.

  Uses `jax.nn.dot_product_attention` (XLA or cuDNN flash) when there is no attention dropout;
  attention-probability dropout needs the probabilities, so that case runs the explicit
  softmax path (same math, float32 softmax).
  """
  if deterministic or dropout_rate == 0.0:
    impl = None if implementation == "auto" else implementation
    return jax.nn.dot_product_attention(q, k, v, mask=mask, is_causal=causal, implementation=impl)
  depth = q.shape[-1]
  logits = jnp.einsum("bqhd,bkhd->bhqk", q, k, preferred_element_type=jnp.float32) / jnp.sqrt(depth)
  if causal:
    t_q, t_k = logits.shape[-2:]
    causal_mask = jnp.tril(jnp.ones((t_q, t_k), bool))[None, None]
    mask = causal_mask if mask is None else mask & causal_mask
  if mask is not None:
    logits = jnp.where(mask, logits, jnp.finfo(jnp.float32).min)
  probs = jax.nn.softmax(logits, axis=-1)
  keep = jax.random.bernoulli(dropout_rng, 1.0 - dropout_rate, probs.shape)
  probs = jnp.where(keep, probs / (1.0 - dropout_rate), 0.0).astype(v.dtype)
  return jnp.einsum("bhqk,bkhd->bqhd", probs, v)


class HeadsProjection(nn.Module):
  """[..., hidden] -> [..., heads, head_dim] (q, k or v), kernel laid out [embed, heads, kv].

  Written out rather than `nn.DenseGeneral`, whose initializer builds the kernel flattened to
  2-D and so cannot carry 3-D logical axis names through sharded initialization.
  """
  config: ModelConfig

  @nn.compact
  def __call__(self, x):
    cfg = self.config
    shape = (cfg.hidden_size, cfg.num_attention_heads, cfg.head_dim)
    kernel = self.param("kernel", normal_init(cfg, ("embed", "heads", "kv")), shape)
    bias = self.param("bias", nn.with_logical_partitioning(nn.initializers.zeros, ("heads", "kv")), shape[1:])
    dtype = cfg.compute_dtype
    return jnp.einsum("...d,dhk->...hk", x.astype(dtype), kernel.astype(dtype)) + bias.astype(dtype)


class HeadsOutput(nn.Module):
  """[..., heads, head_dim] -> [..., hidden], kernel laid out [heads, kv, embed]."""
  config: ModelConfig

  @nn.compact
  def __call__(self, x):
    cfg = self.config
    shape = (cfg.num_attention_heads, cfg.head_dim, cfg.hidden_size)
    kernel = self.param("kernel", normal_init(cfg, ("heads", "kv", "embed")), shape)
    bias = self.param("bias", nn.with_logical_partitioning(nn.initializers.zeros, ("norm",)), shape[-1:])
    dtype = cfg.compute_dtype
    return jnp.einsum("...hk,hkd->...d", x.astype(dtype), kernel.astype(dtype)) + bias.astype(dtype)


class SelfAttention(nn.Module):
  config: ModelConfig
  deterministic: bool = True

  @nn.compact
  def __call__(self, x, mask):
    cfg = self.config
    q, k, v = (nn.with_logical_constraint(HeadsProjection(cfg, name=n)(x), ("act_batch", "act_length", "act_heads", "act_kv"))
               for n in ("query", "key", "value"))
    dropout_rng = None
    if not self.deterministic and cfg.attention_probs_dropout_prob > 0:
      dropout_rng = self.make_rng("dropout")
    out = dot_product_attention(q, k, v, mask, causal=cfg.causal, implementation=cfg.attention,
                                dropout_rate=cfg.attention_probs_dropout_prob, dropout_rng=dropout_rng,
                                deterministic=self.deterministic)
    out = HeadsOutput(cfg, name="output")(out)
    return nn.with_logical_constraint(out, ("act_batch", "act_length", "act_embed"))


class MLP(nn.Module):
  config: ModelConfig

  @nn.compact
  def __call__(self, x):
    cfg = self.config
    h = nn.Dense(cfg.intermediate_size, dtype=cfg.compute_dtype, name="intermediate",
                 kernel_init=normal_init(cfg, ("embed", "mlp")),
                 bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("mlp",)))(x)
    h = nn.with_logical_constraint(activation(cfg.hidden_act)(h), ("act_batch", "act_length", "act_mlp"))
    out = nn.Dense(cfg.hidden_size, dtype=cfg.compute_dtype, name="output",
                   kernel_init=normal_init(cfg, ("mlp", "embed")),
                   bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("norm",)))(h)
    return nn.with_logical_constraint(out, ("act_batch", "act_length", "act_embed"))


def layer_norm(cfg: ModelConfig, name: str) -> nn.LayerNorm:
  """LayerNorm with statistics in float32 and output in the compute dtype."""
  return nn.LayerNorm(epsilon=cfg.layer_norm_eps, dtype=cfg.compute_dtype, name=name,
                      scale_init=nn.with_logical_partitioning(nn.initializers.ones, ("norm",)),
                      bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("norm",)))


class Block(nn.Module):
  """One Transformer block: post-LN (BERT) or pre-LN (GPT-2) residual arrangement."""
  config: ModelConfig
  deterministic: bool = True

  @nn.compact
  def __call__(self, x, mask):
    cfg = self.config
    dropout = nn.Dropout(cfg.hidden_dropout_prob)
    attention = SelfAttention(cfg, self.deterministic, name="attention")
    mlp = MLP(cfg, name="mlp")
    if cfg.pre_layer_norm:
      x = x + dropout(attention(layer_norm(cfg, "attention_norm")(x), mask), self.deterministic)
      x = x + dropout(mlp(layer_norm(cfg, "mlp_norm")(x)), self.deterministic)
    else:
      x = layer_norm(cfg, "attention_norm")(x + dropout(attention(x, mask), self.deterministic))
      x = layer_norm(cfg, "mlp_norm")(x + dropout(mlp(x), self.deterministic))
    return x


class _ScannedBlock(nn.Module):
  """`Block` in the (carry, x) -> (carry, y) form `nn.scan` expects."""
  config: ModelConfig
  deterministic: bool = True

  @nn.compact
  def __call__(self, x, mask):
    return _block_class(self.config)(self.config, self.deterministic, name="block")(x, mask), None


def _block_class(cfg: ModelConfig):
  if cfg.remat == "none":
    return Block
  policy = jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims if cfg.remat == "dots" else None
  return nn.remat(Block, policy=policy, prevent_cse=not cfg.scan_layers)


class Encoder(nn.Module):
  """Embeddings → `num_hidden_layers` blocks → (pre-LN: final LayerNorm) → (pooler)."""
  config: ModelConfig

  @nn.compact
  def __call__(self, input_ids, *, attention_mask=None, token_type_ids=None, segment_ids=None,
               positions=None, deterministic: bool = True) -> EncoderOutput:
    """Encodes a batch.

    Args:
      input_ids: int [batch, length].
      attention_mask: 0/1 [batch, length] (unpacked inputs; ignored when segment_ids is given).
      token_type_ids: int [batch, length] or None.
      segment_ids: int [batch, length]: packed-document ids, 0 = padding.
      positions: int [batch, length] or None (0..length-1).
      deterministic: disables dropout.

    Returns:
      An `EncoderOutput`.
    """
    cfg = self.config
    batch, length = input_ids.shape
    if positions is None:
      positions = jnp.broadcast_to(jnp.arange(length, dtype=jnp.int32), (batch, length))
    mask, token_mask = attention_mask_from(segment_ids, attention_mask, length, batch)
    embeddings = Embeddings(cfg, name="embeddings")
    x = embeddings(input_ids, positions, token_type_ids, deterministic)
    if cfg.scan_layers:
      scanned = nn.scan(_ScannedBlock, variable_axes={"params": 0}, split_rngs={"params": True, "dropout": True},
                        in_axes=nn.broadcast, length=cfg.num_hidden_layers,
                        metadata_params={nn.PARTITION_NAME: "layers"})
      x, _ = scanned(cfg, deterministic, name="layers")(x, mask)
    else:
      block = _block_class(cfg)
      for i in range(cfg.num_hidden_layers):
        x = block(cfg, deterministic, name=f"layer_{i}")(x, mask)
    if cfg.pre_layer_norm:
      x = layer_norm(cfg, "final_norm")(x)
    pooled = ClsPooler(cfg, name="pooler")(x) if cfg.use_pooler else None
    return EncoderOutput(hidden=x, pooled=pooled, token_mask=token_mask,
                         word_embeddings=embeddings.table())
