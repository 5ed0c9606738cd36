"""`TrainState`: everything a training run carries from step to step, explicitly."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

from jaxpretrain.tasks.base import Task
from jaxpretrain.train import optim


class TrainState(flax.struct.PyTreeNode):
  """Step, parameters, optimizer state and the base RNG key (the pytree part that is saved),
  plus static, hashable pieces that say how to step: task, optimizer, schedule, options."""

  step: jax.Array
  params: Any
  opt_state: Any
  rng: jax.Array
  skipped: jax.Array  # updates skipped for non-finite values
  task: Task = flax.struct.field(pytree_node=False)
  tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)
  schedule: Callable = flax.struct.field(pytree_node=False)
  grad_accum_steps: int = flax.struct.field(pytree_node=False, default=1)
  skip_nonfinite: bool = flax.struct.field(pytree_node=False, default=False)

  @classmethod
  def create(cls, config, task: Task, total_steps: int) -> Callable[[Any, jax.Array], TrainState]:
    """How every run creates its step-0 state: the `make_state` that `strategy.init_state` calls.

    The optimizer and schedule are built here, once: every state the returned function makes has
    the same static fields, so one compiled train step serves them all. The function is pure; the
    strategy traces it inside its jitted, sharded initializer.

    Args:
      config: a full config; `train.*` gives the optimizer, the schedule, `grad_accum_steps` and
        `on_nonfinite`.
      task: the run's Task.
      total_steps: optimizer steps of the run (the schedule's length).

    Returns:
      fn(params, rng) -> a TrainState at step 0 with a fresh optimizer state.
    """
    tx, schedule = optim.make_optimizer(config.train, total_steps)
    grad_accum_steps = config.train.grad_accum_steps
    skip_nonfinite = config.train.on_nonfinite == "skip"

    def make_state(params, rng) -> TrainState:
      return cls(
        step=jnp.zeros((), jnp.int32),
        params=params,
        opt_state=tx.init(params),
        rng=rng,
        skipped=jnp.zeros((), jnp.int32),
        task=task,
        tx=tx,
        schedule=schedule,
        grad_accum_steps=grad_accum_steps,
        skip_nonfinite=skip_nonfinite,
      )

    return make_state

  def arrays(self) -> dict:
    """The saved part as a plain dict (what checkpoints hold)."""
    return {
      "step": self.step,
      "params": self.params,
      "opt_state": self.opt_state,
      "rng": self.rng,
      "skipped": self.skipped,
    }

  def replace_arrays(self, arrays: dict) -> TrainState:
    """This state with its saved part replaced (after a restore)."""
    return self.replace(**arrays)
