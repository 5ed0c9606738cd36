"""`TrainState`: everything a training run carries from step to step, explicitly."""
from __future__ import annotations

from typing import Any, Callable

import flax.struct
import jax
import optax

from jaxpretrain.tasks.base import Task


class TrainState(flax.struct.PyTreeNode):
  """Step, parameters, optimizer state and the base RNG key (the pytree part that is saved),
  plus static, hashable pieces that say how to step: task, optimizer, schedule, options."""
  step: jax.Array
  params: Any
  opt_state: Any
  rng: jax.Array
  skipped: jax.Array                       # updates skipped for non-finite values
  task: Task = flax.struct.field(pytree_node=False)
  tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)
  schedule: Callable = flax.struct.field(pytree_node=False)
  grad_accum_steps: int = flax.struct.field(pytree_node=False, default=1)
  skip_nonfinite: bool = flax.struct.field(pytree_node=False, default=False)

  def arrays(self) -> dict:
    """The saved part as a plain dict (what checkpoints hold)."""
    return {"step": self.step, "params": self.params, "opt_state": self.opt_state, "rng": self.rng,
            "skipped": self.skipped}

  def replace_arrays(self, arrays: dict) -> "TrainState":
    """This state with its saved part replaced (after a restore)."""
    return self.replace(**arrays)
