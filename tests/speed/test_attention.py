"""Attention backends available on CPU (xla, auto) and the explicit dropout path agree with a
float64 softmax reference: padding and segment masks, causal, and dropout's expectation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpretrain.errors import UserError
from jaxpretrain.models.encoder import attention_mask_from, dot_product_attention, resolve_attention, softmax_attention

B, T, H, D = 2, 12, 2, 8


def _qkv(seed=0):
  keys = jax.random.split(jax.random.PRNGKey(seed), 3)
  return [jax.random.normal(k, (B, T, H, D), jnp.float32) for k in keys]


def _reference(q, k, v, mask, causal):
  """softmax(q k^T / sqrt(d)) v in float64 numpy, masked keys excluded."""
  q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
  logits = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(D)
  allowed = np.ones((B, 1, T, T), bool) if mask is None else np.asarray(mask)
  if causal:
    allowed = allowed & np.tril(np.ones((T, T), bool))
  logits = np.where(allowed, logits, -np.inf)
  probs = np.exp(logits - logits.max(-1, keepdims=True))
  probs /= probs.sum(-1, keepdims=True)
  return np.einsum("bhqk,bkhd->bqhd", probs, v)


def _masks():
  lengths = np.array([T, 7])
  padding = (np.arange(T)[None] < lengths[:, None]).astype(np.int32)
  segments = np.array([[1] * 5 + [2] * 4 + [3] * 3, [1] * 6 + [2] * 3 + [0] * 3], np.int32)
  return {
    "none": (None, np.ones((B, T), bool)),
    "padding": attention_mask_from(attention_mask=jnp.asarray(padding)),
    "segments": attention_mask_from(segment_ids=jnp.asarray(segments)),
  }


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("mask_kind", ["none", "padding", "segments"])
@pytest.mark.parametrize("backend", ["xla", "auto", "softmax-dropout-path-rate-0"])
def test_backend_matches_reference(backend, mask_kind, causal):
  q, k, v = _qkv()
  mask, tokens = _masks()[mask_kind]
  if backend == "softmax-dropout-path-rate-0":
    out = softmax_attention(q, k, v, mask, causal=causal, dropout_rate=0.0, dropout_rng=jax.random.PRNGKey(1))
  else:
    out = dot_product_attention(
      q, k, v, mask, causal=causal, implementation=backend, dropout_rate=0.1, dropout_rng=None, deterministic=True
    )
  expected = _reference(q, k, v, mask, causal)
  real = np.asarray(tokens)  # padding queries are don't-care rows
  np.testing.assert_allclose(np.asarray(out)[real], expected[real], rtol=1e-5, atol=1e-5)


def test_attention_dropout_is_unbiased_and_drops_at_its_rate():
  q, k, v = _qkv(1)
  mask, _ = _masks()["segments"]
  rate, n = 0.3, 1000
  # Appending ones to v makes the last D outputs the sum of the kept, rescaled probabilities.
  v_and_ones = jnp.concatenate([v, jnp.ones_like(v)], axis=-1)
  run = jax.jit(
    jax.vmap(lambda key: softmax_attention(q, k, v_and_ones, mask, causal=False, dropout_rate=rate, dropout_rng=key))
  )
  outs = np.asarray(run(jax.random.split(jax.random.PRNGKey(0), n)), np.float64)
  outs, sums = outs[..., :D], outs[..., D:]
  expected = _reference(q, k, v, mask, False)
  assert not np.allclose(outs[0], expected, atol=1e-3)  # one draw is perturbed ...
  # ... the average is not: within 5 standard errors everywhere
  standard_error = outs.std(0) / np.sqrt(n)
  assert (np.abs(outs.mean(0) - expected) <= 5 * standard_error + 1e-5).all()
  assert abs(sums.mean() - 1.0) < 0.01 and sums.std() > 0.1


def test_auto_is_xla_on_cpu_and_cudnn_on_cpu_is_a_user_error():
  assert resolve_attention("auto", jnp.bfloat16, 64) == "xla"
  assert resolve_attention("xla", jnp.float32, 64) == "xla"
  with pytest.raises(UserError, match="model.attention=cudnn needs an NVIDIA GPU"):
    resolve_attention("cudnn", jnp.bfloat16, 64)
