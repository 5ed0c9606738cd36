"""Speed switches change nothing but speed: remat policies, scan over layers and bf16 compute give
the plain model's loss and gradients (scan on the same weights, stacked along a layer axis)."""

import dataclasses
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpretrain.tasks.mlm import MaskedLM
from tests.train.helpers import TINY, mlm_batch

DROPOUT = dataclasses.replace(TINY, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)


def _stack_layers(params, layers):
  """Per-layer params `encoder/layer_i` → scan's `encoder/layers/block` with a leading layer axis."""
  encoder = dict(params["encoder"])
  blocks = [encoder.pop(f"layer_{i}") for i in range(layers)]
  encoder["layers"] = {"block": jax.tree.map(lambda *xs: jnp.stack(xs), *blocks)}
  return dict(params, encoder=encoder)


@functools.cache
def _plain(cfg, deterministic):
  """(params, loss, grads) of the plain model (no remat, no scan, float32)."""
  task = MaskedLM(cfg)
  params = nn.meta.unbox(jax.jit(lambda rng: task.init(rng, 32))(jax.random.PRNGKey(0)))  # eager init is slow
  loss, grads = _loss_and_grads(task, params, deterministic)
  return params, loss, grads


def _loss_and_grads(task, params, deterministic):
  batch = {k: jnp.asarray(v) for k, v in mlm_batch(rows=4).items()}
  fn = jax.jit(jax.value_and_grad(lambda p: task.loss(p, batch, jax.random.PRNGKey(3), deterministic=deterministic)[0]))
  return fn(params)


def _close(a, b, rtol):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol * 1e-2), a, b)


# Remat without scan is checked with dropout on below (a stricter check: same masks recomputed).
@pytest.mark.parametrize("remat,scan", [("none", True), ("dots", True)])
def test_remat_and_scan_match_the_plain_model(remat, scan):
  params, loss, grads = _plain(TINY, True)
  cfg = dataclasses.replace(TINY, remat=remat, scan_layers=scan)
  variant_params = _stack_layers(params, TINY.num_hidden_layers) if scan else params
  v_loss, v_grads = _loss_and_grads(MaskedLM(cfg), variant_params, True)
  np.testing.assert_allclose(v_loss, loss, rtol=1e-5)
  _close(v_grads, _stack_layers(grads, TINY.num_hidden_layers) if scan else grads, 1e-4)


@pytest.mark.parametrize("remat", ["dots", "full"])
def test_remat_recomputes_the_same_dropout_masks(remat):
  params, loss, grads = _plain(DROPOUT, False)
  v_loss, v_grads = _loss_and_grads(MaskedLM(dataclasses.replace(DROPOUT, remat=remat)), params, False)
  assert abs(float(loss) - float(_plain(TINY, True)[1])) > 1e-3  # dropout is really on
  np.testing.assert_allclose(v_loss, loss, rtol=1e-5)
  _close(v_grads, grads, 1e-4)


def test_bfloat16_compute_matches_float32_to_bf16_precision():
  params, loss, grads = _plain(TINY, True)
  v_loss, v_grads = _loss_and_grads(MaskedLM(dataclasses.replace(TINY, dtype="bfloat16")), params, True)
  assert {x.dtype for x in jax.tree.leaves(v_grads)} == {jnp.dtype(jnp.float32)}  # float32 master weights
  np.testing.assert_allclose(v_loss, loss, rtol=2e-2)
  flat, v_flat = (np.concatenate([np.ravel(x) for x in jax.tree.leaves(g)]) for g in (grads, v_grads))
  assert np.corrcoef(flat, v_flat)[0, 1] > 0.99
