"""Stage 2: the Transformer encoder (bidirectional for BERT, `causal=True` for GPT decoders).

`Encoder` runs embeddings → N blocks → (final norm for pre-LN) → optional [CLS] pooler, and
returns an `EncoderOutput` that the task heads consume. Attention masks come from `segment_ids`
(packed documents attend only within their own document; 0 marks padding) or, for unpacked
inputs, from `attention_mask`.

The blocks follow the `model.*` switches (`families.py` names the combinations): post-LN (BERT) or
pre-LN (GPT-2, ModernBERT, Llama); learned or rotary positions; LayerNorm or RMSNorm; biases or
none; a plain or gated (GeGLU / SwiGLU) MLP; grouped-query attention (`num_key_value_heads`); and
sliding-window local attention on every layer but each `global_attn_every_n_layers`-th. Under
`nn.scan` one compiled layer serves them all, so what differs per layer (window, rotary base,
ModernBERT's missing first attention norm) follows the layer index, a scanned input.
"""

from __future__ import annotations

import functools
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxpretrain.errors import UserError
from jaxpretrain.models.config import ModelConfig
from jaxpretrain.models.embeddings import Embeddings, apply_rotary, norm, normal_init, rotary
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
  hidden: jax.Array  # [batch, length, hidden], compute dtype
  pooled: Any  # [batch, hidden] from the [CLS] pooler, or None
  token_mask: jax.Array  # bool [batch, length], true on real (non-pad) tokens
  word_embeddings: jax.Array  # [vocab, hidden] float32, for tied output projections


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
    # Padding (id 0) attends to padding: no query row is fully masked, which some fused kernels
    # turn into NaNs; real tokens still never see padding or another document.
    mask = segment_ids[:, :, None] == segment_ids[:, None, :]
  elif attention_mask is not None:
    tokens = attention_mask.astype(bool)
    mask = jnp.broadcast_to(tokens[:, None, :], tokens.shape + tokens.shape[-1:])
  else:
    tokens = jnp.ones((batch, length), bool)
    return None, tokens
  return mask[:, None], tokens


def segment_positions(segment_ids):
  """Position ids that restart at 0 at the start of every run of equal segment ids.

  Args:
    segment_ids: int [batch, length] (packed documents 1, 2, ...; padding 0).

  Returns:
    int32 [batch, length]: e.g. segment_ids [1 1 1 2 2 0] -> [0 1 2 0 1 0].
  """
  index = jnp.arange(segment_ids.shape[1], dtype=jnp.int32)[None]
  starts = jnp.concatenate([jnp.ones_like(segment_ids[:, :1], bool), segment_ids[:, 1:] != segment_ids[:, :-1]], axis=1)
  return index - jax.lax.cummax(jnp.where(starts, index, 0), axis=1)


def window_mask(q_len: int, kv_len: int, window: int, causal: bool):
  """bool [1, 1, q_len, kv_len]: key j is within `window` of query i (causal: i - window <= j <= i)."""
  distance = jnp.arange(q_len)[:, None] - jnp.arange(kv_len)[None, :]
  inside = (distance <= window) & (distance >= (0 if causal else -window))
  return inside[None, None]


def _and(mask, other):
  return other if mask is None else mask & other


def dot_product_attention(
  q,
  k,
  v,
  mask,
  *,
  causal: bool,
  implementation: str,
  dropout_rate: float,
  dropout_rng,
  deterministic: bool,
  window: int = 0,
):
  """Multi-head attention over [batch, length, heads, head_dim] inputs (k, v may have fewer heads
  than q: grouped-query attention, query head h reading key/value head h // (heads / kv_heads)).

  Uses `jax.nn.dot_product_attention` (XLA or cuDNN flash) when there is no attention dropout;
  attention-probability dropout needs the probabilities, so that case runs the explicit
  softmax path (same math, float32 softmax). A sliding `window` (> 0) goes to the kernel as
  `local_window_size` where the backend takes it (XLA; cuDNN only for causal windows) and
  into the mask otherwise.
  """
  if deterministic or dropout_rate == 0.0:
    impl = resolve_attention(implementation, q.dtype, q.shape[-1])
    local = None
    if window and (impl == "xla" or causal):
      local = (window, 0 if causal else window)
    elif window:
      mask = _and(mask, window_mask(q.shape[1], k.shape[1], window, causal))
    return jax.nn.dot_product_attention(
      q, k, v, mask=mask, is_causal=causal, implementation=impl, local_window_size=local
    )
  if window:
    mask = _and(mask, window_mask(q.shape[1], k.shape[1], window, causal))
  return softmax_attention(q, k, v, mask, causal=causal, dropout_rate=dropout_rate, dropout_rng=dropout_rng)


def _cudnn_supports(dtype, head_dim: int) -> bool:
  """cuDNN flash attention: NVIDIA GPUs, 16-bit inputs, head_dim a multiple of 8 up to 128."""
  if jax.default_backend() != "gpu" or "nvidia" not in jax.devices()[0].device_kind.lower():
    return False
  return jnp.dtype(dtype) in (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16)) and head_dim % 8 == 0 and head_dim <= 128


def resolve_attention(name: str, dtype, head_dim: int) -> str:
  """The `jax.nn.dot_product_attention` implementation that `model.attention=name` runs.

  `auto` picks cuDNN where it supports the inputs and XLA elsewhere (jax's own default, None,
  is XLA everywhere today); `cudnn` where cuDNN cannot run is a `UserError`.

  Args:
    name: xla | cudnn | auto.
    dtype: the attention inputs' dtype (the model's compute dtype).
    head_dim: hidden_size / num_attention_heads.

  Returns:
    "xla" or "cudnn".
  """
  supported = _cudnn_supports(dtype, head_dim)
  if name == "auto":
    return "cudnn" if supported else "xla"
  if name == "cudnn" and not supported:
    raise UserError(
      f"model.attention=cudnn needs an NVIDIA GPU, model.dtype bfloat16 or float16 and a "
      f"head size that is a multiple of 8 up to 128 (have {jax.default_backend()}, "
      f"{jnp.dtype(dtype).name}, {head_dim}); use model.attention=auto"
    )
  return name


def softmax_attention(q, k, v, mask, *, causal: bool, dropout_rate: float = 0.0, dropout_rng=None):
  """Explicit attention: float32 softmax(q k^T / sqrt(d) + mask), dropout on the probabilities, @ v.

  Args:
    q, k, v: [batch, length, heads, head_dim] (k, v may have fewer heads: grouped-query attention).
    mask: bool [batch, 1, q_len, kv_len] or None.
    causal: also mask keys after the query.
    dropout_rate: attention-probability dropout (0 keeps every probability).
    dropout_rng: key for the dropout mask (needed when dropout_rate > 0).

  Returns:
    [batch, q_len, heads, head_dim] in v's dtype.
  """
  depth = q.shape[-1]
  groups = q.shape[2] // k.shape[2]
  if groups > 1:  # query head h reads key/value head h // groups (HF's repeat_kv)
    k, v = jnp.repeat(k, groups, axis=2), jnp.repeat(v, groups, axis=2)
  logits = jnp.einsum("bqhd,bkhd->bhqk", q, k, preferred_element_type=jnp.float32) / jnp.sqrt(depth)
  if causal:
    t_q, t_k = logits.shape[-2:]
    causal_mask = jnp.tril(jnp.ones((t_q, t_k), bool))[None, None]
    mask = causal_mask if mask is None else mask & causal_mask
  if mask is not None:
    logits = jnp.where(mask, logits, jnp.finfo(jnp.float32).min)
  probs = jax.nn.softmax(logits, axis=-1)
  if dropout_rate > 0.0:
    keep = jax.random.bernoulli(dropout_rng, 1.0 - dropout_rate, probs.shape)
    probs = jnp.where(keep, probs / (1.0 - dropout_rate), 0.0)
  probs = probs.astype(v.dtype)
  return jnp.einsum("bhqk,bkhd->bqhd", probs, v)


class HeadsProjection(nn.Module):
  """[..., hidden] -> [..., heads, head_dim] (q, k or v), kernel laid out [embed, heads, kv].

  Written out rather than `nn.DenseGeneral`, whose initializer builds the kernel flattened to
  2-D and so cannot carry 3-D logical axis names through sharded initialization. Keys and values
  of grouped-query attention have `kv_heads` heads, named "kv_heads" so the mesh rules shard them
  on their own terms (they may not divide the tensor axis that splits the query heads).
  """

  config: ModelConfig
  kv: bool = False  # a key or value projection

  @nn.compact
  def __call__(self, x):
    cfg = self.config
    grouped = self.kv and cfg.kv_heads != cfg.num_attention_heads
    heads, axis = (cfg.kv_heads, "kv_heads") if grouped else (cfg.num_attention_heads, "heads")
    shape = (cfg.hidden_size, heads, cfg.head_dim)
    kernel = self.param("kernel", normal_init(cfg, ("embed", axis, "kv")), shape)
    dtype = cfg.compute_dtype
    out = jnp.einsum("...d,dhk->...hk", x.astype(dtype), kernel.astype(dtype))
    if cfg.use_bias:
      bias = self.param("bias", nn.with_logical_partitioning(nn.initializers.zeros, (axis, "kv")), shape[1:])
      out = out + bias.astype(dtype)
    act = "act_kv_heads" if grouped else "act_heads"
    return nn.with_logical_constraint(out, ("act_batch", "act_length", act, "act_kv"))


class HeadsOutput(nn.Module):
  """[..., heads, head_dim] -> [..., hidden], kernel laid out [heads, kv, embed]."""

  config: ModelConfig

  @nn.compact
  def __call__(self, x):
    cfg = self.config
    shape = (cfg.num_attention_heads, cfg.head_dim, cfg.hidden_size)
    kernel = self.param("kernel", normal_init(cfg, ("heads", "kv", "embed")), shape)
    dtype = cfg.compute_dtype
    out = jnp.einsum("...hk,hkd->...d", x.astype(dtype), kernel.astype(dtype))
    if cfg.use_bias:
      bias = self.param("bias", nn.with_logical_partitioning(nn.initializers.zeros, ("norm",)), shape[-1:])
      out = out + bias.astype(dtype)
    return out


def _layer_kind(cfg: ModelConfig, layer):
  """(is_global, first): whether `layer` attends globally and is layer 0, as Python bools for an
  unrolled layer (a static index) or traced bools under `nn.scan` (a scanned index)."""
  if isinstance(layer, int):
    return cfg.is_global(layer), layer == 0
  is_global = True if not cfg.sliding_window else layer % cfg.global_attn_every_n_layers == 0
  return is_global, layer == 0


def _pick_rotary(rope, is_global):
  """The (cos, sin) tables a layer rotates with: global, local, or selected on device under scan."""
  if "local" not in rope or is_global is True:
    return rope["global"]
  if is_global is False:
    return rope["local"]
  return jax.tree.map(lambda glob, loc: jnp.where(is_global, glob, loc), rope["global"], rope["local"])


class SelfAttention(nn.Module):
  """Multi-head self-attention; `decode=True` attends through a KV cache (incremental decoding).

  The cache lives in the flax "cache" collection (`cached_key`, `cached_value` [batch, max_len,
  kv_heads, head_dim] (rotated keys for rotary models), `cached_valid` [batch, max_len],
  `cache_index`) and adds no parameters, so training and decoding share one parameter tree.
  """

  config: ModelConfig
  deterministic: bool = True
  decode: bool = False

  @nn.compact
  def __call__(self, x, mask, rope=None, layer=0):
    """Attends.

    Args:
      x: [batch, length, hidden].
      mask: bool [batch, 1, length, length] or None (decode: the chunk's token mask [batch, length]).
      rope: the rotary tables (`embeddings.rotary`) or None.
      layer: the layer index (an int, or traced under `nn.scan`): picks the window and rotary base.

    Returns:
      [batch, length, hidden].
    """
    cfg = self.config
    q = HeadsProjection(cfg, name="query")(x)
    k = HeadsProjection(cfg, kv=True, name="key")(x)
    v = HeadsProjection(cfg, kv=True, name="value")(x)
    is_global, _ = _layer_kind(cfg, layer)
    if rope is not None:
      cos, sin = _pick_rotary(rope, is_global)
      q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
    window = 0 if is_global is True else cfg.sliding_window
    if window and is_global is not False and not self.decode:  # traced: the window goes into the mask
      mask = _and(mask, window_mask(x.shape[1], x.shape[1], window, cfg.causal) | is_global)
      window = 0
    if self.decode:
      out = self._cached_attention(q, k, v, mask, window, is_global)
    else:
      dropout_rng = None
      if not self.deterministic and cfg.attention_probs_dropout_prob > 0:
        dropout_rng = self.make_rng("dropout")
      out = dot_product_attention(
        q,
        k,
        v,
        mask,
        causal=cfg.causal,
        implementation=cfg.attention,
        dropout_rate=cfg.attention_probs_dropout_prob,
        dropout_rng=dropout_rng,
        deterministic=self.deterministic,
        window=window,
      )
    out = HeadsOutput(cfg, name="output")(out)
    return nn.with_logical_constraint(out, ("act_batch", "act_length", "act_embed"))

  def _cached_attention(self, q, k, v, token_mask, window, is_global):
    """Writes the chunk's keys and values at `cache_index`, then attends from its queries to every
    cached real token at or before their own position (within `window` of it on a local layer).

    A chunk may be a whole (left-padded) prompt or one new token. The first call, which creates
    the cache, sizes it from its input: call once with a [batch, max_len] input to allocate.
    Left padding keeps a row's real tokens in consecutive slots, so slot distance is position
    distance and the window applies to slots.

    Args:
      q: [batch, chunk, heads, head_dim]; k, v: [batch, chunk, kv_heads, head_dim].
      token_mask: bool [batch, chunk], false on padding (padded keys are never attended to).
      window: the sliding window (0 = none).
      is_global: under scan, a traced bool that lifts the window on global layers.

    Returns:
      [batch, chunk, heads, head_dim].
    """
    cached_key = self.variable("cache", "cached_key", jnp.zeros, k.shape, k.dtype)
    cached_value = self.variable("cache", "cached_value", jnp.zeros, v.shape, v.dtype)
    cached_valid = self.variable("cache", "cached_valid", jnp.zeros, token_mask.shape, bool)
    cache_index = self.variable("cache", "cache_index", lambda: jnp.zeros((), jnp.int32))
    start = cache_index.value
    keys = jax.lax.dynamic_update_slice(cached_key.value, k.astype(cached_key.value.dtype), (0, start, 0, 0))
    values = jax.lax.dynamic_update_slice(cached_value.value, v.astype(cached_value.value.dtype), (0, start, 0, 0))
    valid = jax.lax.dynamic_update_slice(cached_valid.value, token_mask, (0, start))
    cached_key.value, cached_value.value, cached_valid.value = keys, values, valid
    cache_index.value = start + k.shape[1]
    query_at = start + jnp.arange(q.shape[1])
    distance = query_at[:, None] - jnp.arange(keys.shape[1])[None, :]  # [chunk, max_len]
    allowed = distance >= 0
    if window:
      allowed = allowed & ((distance <= window) | is_global)
    mask = valid[:, None, None, :] & allowed[None, None]
    return softmax_attention(q, keys, values, mask, causal=False)


class MLP(nn.Module):
  """output(act(intermediate(x))), or gated: output(act(gate(x)) * intermediate(x)) (GeGLU, SwiGLU)."""

  config: ModelConfig

  @nn.compact
  def __call__(self, x):
    cfg = self.config

    def dense(features, name, axes):
      return nn.Dense(
        features,
        use_bias=cfg.use_bias,
        dtype=cfg.compute_dtype,
        name=name,
        kernel_init=normal_init(cfg, axes),
        bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("norm",) if axes[1] == "embed" else axes[1:]),
      )

    h = dense(cfg.intermediate_size, "intermediate", ("embed", "mlp"))(x)
    if cfg.gated_mlp:
      h = activation(cfg.hidden_act)(dense(cfg.intermediate_size, "gate", ("embed", "mlp"))(x)) * h
    else:
      h = activation(cfg.hidden_act)(h)
    h = nn.with_logical_constraint(h, ("act_batch", "act_length", "act_mlp"))
    out = dense(cfg.hidden_size, "output", ("mlp", "embed"))(h)
    return nn.with_logical_constraint(out, ("act_batch", "act_length", "act_embed"))


def layer_norm(cfg: ModelConfig, name: str) -> nn.Module:
  """The model's norm (`embeddings.norm`) with statistics in float32 and output in the compute dtype."""
  return norm(cfg, name, cfg.compute_dtype)


class Block(nn.Module):
  """One Transformer block: post-LN (BERT) or pre-LN (GPT-2, ModernBERT, Llama) residual arrangement.

  With `pre_ln_embedding_norm` (ModernBERT) layer 0 has no attention norm: its input is the
  already-normalized embedding.
  """

  config: ModelConfig
  deterministic: bool = True
  decode: bool = False

  @nn.compact
  def __call__(self, x, mask, rope=None, layer=0):
    cfg = self.config
    dropout = nn.Dropout(cfg.hidden_dropout_prob)
    attention = SelfAttention(cfg, self.deterministic, self.decode, name="attention")
    mlp = MLP(cfg, name="mlp")
    if cfg.pre_layer_norm:
      _, first = _layer_kind(cfg, layer)
      if not cfg.pre_ln_embedding_norm:
        h = layer_norm(cfg, "attention_norm")(x)
      elif first is True:
        h = x
      elif first is False:
        h = layer_norm(cfg, "attention_norm")(x)
      else:  # scanned: every layer has the norm; layer 0 skips it
        h = jnp.where(first, x, layer_norm(cfg, "attention_norm")(x))
      x = x + dropout(attention(h, mask, rope, layer), self.deterministic)
      x = x + dropout(mlp(layer_norm(cfg, "mlp_norm")(x)), self.deterministic)
    else:
      x = layer_norm(cfg, "attention_norm")(x + dropout(attention(x, mask, rope, layer), self.deterministic))
      x = layer_norm(cfg, "mlp_norm")(x + dropout(mlp(x), self.deterministic))
    return x


class _ScannedBlock(nn.Module):
  """`Block` in the (carry, x) -> (carry, y) form `nn.scan` expects; the layer index is scanned."""

  config: ModelConfig
  deterministic: bool = True
  decode: bool = False

  @nn.compact
  def __call__(self, x, mask, rope, layer):
    block = _block_class(self.config, scanned=True)(self.config, self.deterministic, self.decode, name="block")
    return block(x, mask, rope, layer), None


def _block_class(cfg: ModelConfig, scanned: bool = False):
  if cfg.remat == "none":
    return Block
  policy = jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims if cfg.remat == "dots" else None
  # An unrolled layer's index is a Python int that picks its window and norms: static for remat.
  return nn.remat(Block, policy=policy, prevent_cse=not cfg.scan_layers, static_argnums=() if scanned else (4,))


class Encoder(nn.Module):
  """Embeddings → `num_hidden_layers` blocks → (pre-LN: final norm) → (pooler)."""

  config: ModelConfig

  @nn.compact
  def __call__(
    self,
    input_ids,
    *,
    attention_mask=None,
    token_type_ids=None,
    segment_ids=None,
    positions=None,
    deterministic: bool = True,
    decode: bool = False,
  ) -> EncoderOutput:
    """Encodes a batch.

    Args:
      input_ids: int [batch, length].
      attention_mask: 0/1 [batch, length] (unpacked inputs; ignored when segment_ids is given).
      token_type_ids: int [batch, length] or None.
      segment_ids: int [batch, length]: packed-document ids, 0 = padding.
      positions: int [batch, length] or None (0..length-1); `position_offset` is added.
      deterministic: disables dropout.
      decode: incremental decoding through the attention KV cache (`mutable=["cache"]`; pass
        explicit `positions` and, for padded prompts, `attention_mask`).

    Returns:
      An `EncoderOutput`.
    """
    cfg = self.config
    batch, length = input_ids.shape
    mask, token_mask = attention_mask_from(segment_ids, attention_mask, length, batch)
    if decode:  # keys come from the cache, which records which of them are real tokens
      mask = token_mask
    if positions is None and segment_ids is not None and cfg.packed_positions == "restart":
      positions = segment_positions(segment_ids)  # each packed document counts from 0 (+ offset)
    if positions is None and cfg.position_offset:
      # RoBERTa (fairseq) numbering, as HF computes it from the padding: real tokens count from
      # position_offset (= padding_idx + 1), padding sits at padding_idx.
      counts = jnp.cumsum(token_mask, axis=1, dtype=jnp.int32)
      positions = jnp.where(token_mask, counts - 1 + cfg.position_offset, cfg.position_offset - 1)
    elif positions is None:
      positions = jnp.broadcast_to(jnp.arange(length, dtype=jnp.int32), (batch, length))
    else:
      positions = positions + cfg.position_offset
    embeddings = Embeddings(cfg, name="embeddings")
    x = embeddings(input_ids, positions, token_type_ids, deterministic)
    rope = rotary(cfg, positions)
    if cfg.scan_layers:
      scanned = nn.scan(
        _ScannedBlock,
        variable_axes={"params": 0, "cache": 0},
        split_rngs={"params": True, "dropout": True},
        in_axes=(nn.broadcast, nn.broadcast, 0),
        length=cfg.num_hidden_layers,
        metadata_params={nn.PARTITION_NAME: "layers"},
      )
      layers = jnp.arange(cfg.num_hidden_layers, dtype=jnp.int32)
      x, _ = scanned(cfg, deterministic, decode, name="layers")(x, mask, rope, layers)
    else:
      block = _block_class(cfg)
      for i in range(cfg.num_hidden_layers):
        x = block(cfg, deterministic, decode, name=f"layer_{i}")(x, mask, rope, i)
    if cfg.pre_layer_norm:
      x = layer_norm(cfg, "final_norm")(x)
    pooled = ClsPooler(cfg, name="pooler")(x) if cfg.use_pooler else None
    return EncoderOutput(hidden=x, pooled=pooled, token_mask=token_mask, word_embeddings=embeddings.table())
