"""The tied vocabulary projection: float32 logits, and backward matmuls in the compute dtype."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpretrain.models.heads import tied_logits


def _data():
  rng = np.random.RandomState(0)
  hidden = jnp.asarray(rng.normal(size=(4, 16, 64)), jnp.float32)
  table = jnp.asarray(rng.normal(size=(1000, 64)) * 0.02, jnp.float32)
  labels = jnp.asarray(rng.randint(0, 1000, (4, 16)))
  return hidden, table, labels


def _loss(logits_fn, labels):
  def loss(hidden, table):
    logits = logits_fn(hidden, table)
    return -jnp.take_along_axis(jax.nn.log_softmax(logits), labels[..., None], -1).mean()

  return loss


def _autodiff_logits(dtype):
  return lambda h, t: jnp.einsum("...d,vd->...v", h.astype(dtype), t.astype(dtype), preferred_element_type=jnp.float32)


def _dot_operand_dtypes(fn, *args) -> set:
  jaxpr = jax.make_jaxpr(fn)(*args)
  return {tuple(str(v.aval.dtype) for v in eqn.invars) for eqn in jaxpr.eqns if eqn.primitive.name == "dot_general"}


def test_float32_gradients_are_plain_autodiff():
  hidden, table, labels = _data()
  want = jax.grad(_loss(_autodiff_logits(jnp.float32), labels), (0, 1))(hidden, table)
  got = jax.grad(_loss(lambda h, t: tied_logits(h, t, jnp.float32), labels), (0, 1))(hidden, table)
  for g, w in zip(got, want):
    np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_low_precision_backward_matmuls_stay_in_the_compute_dtype(dtype):
  hidden, table, labels = _data()
  loss = _loss(lambda h, t: tied_logits(h, t, dtype), labels)
  name = jnp.dtype(dtype).name
  # Forward and both backward matmuls multiply 16-bit operands (autodiff would promote the
  # backward ones to float32 through the float32 logits' cotangent).
  assert _dot_operand_dtypes(jax.grad(loss, (0, 1)), hidden, table) == {(name, name)}
  assert ("float32", name) in _dot_operand_dtypes(
    jax.grad(_loss(_autodiff_logits(dtype), labels), (0, 1)), hidden, table
  )
  logits = tied_logits(hidden, table, dtype)
  assert logits.dtype == jnp.float32
  want = jax.grad(_loss(_autodiff_logits(dtype), labels), (0, 1))(hidden, table)
  got = jax.grad(loss, (0, 1))(hidden, table)
  for g, w in zip(got, want):
    assert g.dtype == w.dtype == jnp.float32
    assert float(jnp.linalg.norm(g - w) / jnp.linalg.norm(w)) < 1e-2  # one 16-bit rounding of the cotangent
