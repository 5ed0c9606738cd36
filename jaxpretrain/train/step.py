"""THE train step and eval step: pure functions, generic over tasks, jitted by the caller.

Pretraining and fine-tuning call the very same `train_step`; the task riding in the state
supplies the loss. Losses are sums divided by a weight only after summing over
gradient-accumulation micro-batches (and devices, under pmap), so the update is identical however
the global batch is split.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxpretrain.train.state import TrainState


def _add(a, b):
  return jax.tree.map(jnp.add, a, b)


def _micro_batches(batch: dict, n: int) -> dict:
  # Micro-batch i takes examples i, i+n, i+2n, ...: a strided split keeps every device's shard
  # of a data-parallel batch on that device (a contiguous split would move data between devices).
  return jax.tree.map(lambda x: x.reshape((x.shape[0] // n, n) + x.shape[1:]).swapaxes(0, 1), batch)


def with_example_index(batch: dict) -> dict:
  """Adds `example_index` (each row's index in the global batch) unless the strategy set it.

  Tasks derive per-example randomness (e.g. MLM masks) from it, which makes the loss independent
  of how a global batch is split over devices and micro-batches.
  """
  if "example_index" in batch:
    return batch
  rows = jax.tree.leaves(batch)[0].shape[0]
  return dict(batch, example_index=jnp.arange(rows, dtype=jnp.int32))


def loss_and_grads(state: TrainState, batch: dict, rng):
  """Summed loss gradients and aux sums over the batch (accumulated over micro-batches)."""
  batch = with_example_index(batch)
  grad_fn = jax.grad(lambda p, b, r: state.task.loss(p, b, r, deterministic=False), has_aux=True)
  if state.grad_accum_steps == 1:
    return grad_fn(state.params, batch, rng)
  micro = _micro_batches(batch, state.grad_accum_steps)
  first = jax.tree.map(lambda x: x[0], micro)
  zeros = jax.tree.map(jnp.zeros_like, jax.eval_shape(grad_fn, state.params, first, rng))
  zeros = jax.tree.map(lambda z: jnp.zeros(z.shape, z.dtype), zeros)

  def body(carry, micro_batch):  # one step key: tasks vary randomness by example_index
    return _add(carry, grad_fn(state.params, micro_batch, rng)), None

  (grads, aux), _ = jax.lax.scan(body, zeros, micro)
  return grads, aux


def train_step(state: TrainState, batch: dict, rng, axis_name: str | None = None):
  """One optimizer update.

  Args:
    state: the `TrainState` (its task defines the loss).
    batch: dict of arrays with a leading (global, or per-device under pmap) batch dimension.
    rng: this step's key (masking, dropout); the loop derives it as fold_in(state.rng, step).
    axis_name: the pmap axis to sum gradients over; None under jit (arrays are global).

  Returns:
    (new state, metrics dict of scalars: task metrics, `grad_norm`, `learning_rate`, `finite`).
  """
  grads, aux = loss_and_grads(state, batch, rng)
  if axis_name is not None:
    grads, aux = jax.lax.psum((grads, aux), axis_name)
  weight = jnp.maximum(aux["weight"], 1.0)
  grads = jax.tree.map(lambda g: g / weight, grads)
  metrics = state.task.metrics(aux)
  grad_norm = optax.tree.norm(grads)
  updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  finite = jnp.isfinite(metrics["loss"]) & jnp.isfinite(grad_norm)
  skipped = state.skipped
  if state.skip_nonfinite:
    keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)
    params, opt_state = keep(params, state.params), keep(opt_state, state.opt_state)
    skipped = skipped + (~finite).astype(skipped.dtype)
  metrics.update(grad_norm=grad_norm, learning_rate=state.schedule(state.step), finite=finite, skipped=skipped)
  new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state, skipped=skipped)
  return new_state, metrics


def eval_step(state: TrainState, batch: dict, rng, axis_name: str | None = None):
  """Aux sums of the task loss on one batch (no update, no dropout).

  Returns sums, not means, so the caller can add several batches and call `task.metrics` once.
  """
  _, aux = state.task.loss(state.params, with_example_index(batch), rng, deterministic=True)
  if axis_name is not None:
    aux = jax.lax.psum(aux, axis_name)
  return aux
