"""The one train step: learning, accumulation exactness, no recompilation, eval sums."""

import dataclasses
import gc
import weakref

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpretrain import config as config_lib
from jaxpretrain.models.heads import SequenceClassificationHead
from jaxpretrain.tasks.base import Task, cross_entropy_sums
from jaxpretrain.tasks.mlm import MaskedLM
from tests.train.helpers import TINY, make_state, mlm_batch


def test_loss_falls_on_a_fixed_batch_without_recompiling():
  strategy, state = make_state(MaskedLM(TINY))
  step = strategy.compile_train_step()
  batch = strategy.put_batch(mlm_batch())
  losses = []
  for i in range(40):
    state, metrics = step(state, batch, jax.random.PRNGKey(i % 2))
    losses.append(float(metrics["loss"]))
  assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
  assert step.jitted._cache_size() == 1  # compiled once, reused for every step
  assert int(state.step) == 40


@pytest.mark.parametrize(
  "strategy_name",
  [
    "jit",
    # jax 0.10's pmap (a shard_map underneath) caches each function's wrapper in a weak-keyed table
    # whose value holds the function itself, so nothing pmapped is ever freed.
    pytest.param("pmap", marks=pytest.mark.xfail(strict=True, reason="jax.pmap keeps every function it mapped")),
  ],
)
def test_a_finished_runs_compiled_steps_are_released(strategy_name):
  """JAX caches a function's programs for as long as the function lives: each strategy's steps are
  functions of their own, so a long-lived process (a sweep, the test suite) frees a run's executables
  with the run instead of piling them up until XLA's CPU compiler runs out of memory mappings."""
  mesh = config_lib.defaults().mesh
  mesh.strategy = strategy_name
  strategy, state = make_state(MaskedLM(TINY), mesh=mesh)
  step = strategy.compile_train_step()
  step(state, strategy.put_batch(mlm_batch()), jax.random.PRNGKey(0))
  compiled = getattr(step, "jitted", None) or step.pmapped
  compiled_fn = weakref.ref(compiled.__wrapped__)
  del strategy, state, step, compiled
  gc.collect()
  assert compiled_fn() is None  # nothing (no JAX cache) keeps the run's step, nor so its executables


@dataclasses.dataclass(frozen=True)
class _FixedLabels(Task):
  """A deterministic classification loss (no RNG): makes accumulation exactly checkable."""

  name = "fixed"

  def head(self):
    return SequenceClassificationHead(self.model_config, num_labels=3, dropout=0.0)

  def dummy_batch(self, batch_size, seq_len):
    return {
      "input_ids": jnp.zeros((batch_size, seq_len), jnp.int32),
      "attention_mask": jnp.ones((batch_size, seq_len), jnp.int32),
      "label": jnp.zeros((batch_size,), jnp.int32),
    }

  def loss(self, params, batch, rng, *, deterministic):
    logits = self.model.apply(
      {"params": params}, {k: batch[k] for k in ("input_ids", "attention_mask")}, deterministic=True
    )
    loss_sum, weight, correct = cross_entropy_sums(logits, batch["label"], jnp.ones_like(batch["label"]))
    return loss_sum, {"loss_sum": loss_sum, "weight": weight, "correct": correct}


def _cls_batch():
  rs = np.random.RandomState(1)
  return {
    "input_ids": rs.randint(5, 64, (16, 32)).astype(np.int32),
    "attention_mask": (np.arange(32)[None] < rs.randint(4, 33, (16, 1))).astype(np.int32),
    "label": rs.randint(0, 3, 16).astype(np.int32),
  }


def test_gradient_accumulation_equals_one_big_batch():
  results = []
  for accum in (1, 2, 4):
    strategy, state = make_state(_FixedLabels(TINY), accum=accum)
    step = strategy.compile_train_step()
    batch = strategy.put_batch(_cls_batch())
    for i in range(3):
      state, metrics = step(state, batch, jax.random.PRNGKey(i))
    results.append((float(metrics["loss"]), jax.device_get(state.params)))
  for loss, params in results[1:]:
    np.testing.assert_allclose(loss, results[0][0], rtol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), params, results[0][1])


def test_nonfinite_skip_keeps_params_and_counts():
  strategy, state = make_state(_FixedLabels(TINY))
  state = state.replace(skip_nonfinite=True)
  strategy.state_shardings = strategy.state_shardings.replace(skip_nonfinite=True)
  step = strategy.compile_train_step()
  batch = _cls_batch()
  before = jax.device_get(state.params)
  poisoned = jax.tree.map(lambda x: x, state.params)
  poisoned["head"]["classifier"]["bias"] = poisoned["head"]["classifier"]["bias"] * jnp.nan
  state = state.replace(params=poisoned)
  state, metrics = step(state, strategy.put_batch(batch), jax.random.PRNGKey(0))
  assert not bool(metrics["finite"]) and int(metrics["skipped"]) == 1
  assert int(state.step) == 1
  np.testing.assert_array_equal(
    jax.device_get(state.params)["encoder"]["embeddings"]["word_embeddings"]["embedding"],
    before["encoder"]["embeddings"]["word_embeddings"]["embedding"],
  )


def test_eval_step_returns_sums_that_add_up():
  strategy, state = make_state(_FixedLabels(TINY))
  eval_step = strategy.compile_eval_step()
  batch = _cls_batch()
  whole = eval_step(state, strategy.put_batch(batch), jax.random.PRNGKey(0))
  halves = [
    eval_step(state, strategy.put_batch({k: v[i::2] for k, v in batch.items()}), jax.random.PRNGKey(0))
    for i in range(2)
  ]
  np.testing.assert_allclose(whole["loss_sum"], halves[0]["loss_sum"] + halves[1]["loss_sum"], rtol=1e-5)
  assert float(whole["weight"]) == 16


def test_mlm_accumulation_equals_one_big_batch():
  # Per-example masking keys make even the randomly masked MLM loss split-invariant.
  results = []
  for accum in (1, 4):
    strategy, state = make_state(MaskedLM(TINY), accum=accum)
    step = strategy.compile_train_step()
    batch = strategy.put_batch(mlm_batch())
    for i in range(2):
      state, metrics = step(state, batch, jax.random.PRNGKey(i))
    results.append(float(metrics["loss"]))
  np.testing.assert_allclose(results[1], results[0], rtol=1e-5)
