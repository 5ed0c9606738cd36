"""Strategies own how state and batches are laid out on devices and how the step is compiled.

The loop talks to a strategy only through: `check_batch_size`, `check_model`, `init_state` (or
`init_program`, its reusable initializer), `state_shardings`, `compile_train_step`,
`compile_eval_step`, `put_batch`, `put_replicated`, `data_parallel_size` and `mesh`.
`JitStrategy` (the default) runs `jax.jit` over a (data, fsdp, tensor) mesh with logical axis
rules; `PmapStrategy` (`parallel/pmap.py`) is classic data parallelism. Both hold the state as
global arrays and return metrics as replicated scalars, so the loop never branches on the strategy.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxpretrain.errors import UserError
from jaxpretrain.parallel import batch as batch_lib
from jaxpretrain.parallel import mesh as mesh_lib
from jaxpretrain.parallel import rules as rules_lib
from jaxpretrain.parallel.pmap import PmapStrategy
from jaxpretrain.train import step as step_lib
from jaxpretrain.train.state import TrainState


class JitStrategy:
  """`jax.jit` with NamedSharding in/out shardings; the state is created directly sharded."""

  name = "jit"

  def __init__(self, mesh_config, devices=None):
    self.mesh = mesh_lib.make_mesh(mesh_config, devices)
    self.rules = rules_lib.rules_from_config(mesh_config)
    self.data_parallel_size = self.mesh.shape["data"] * self.mesh.shape["fsdp"]
    self.batch_sharding = rules_lib.batch_sharding(self.mesh)
    self.replicated = NamedSharding(self.mesh, P())
    self.state_shardings = None

  def check_batch_size(self, global_batch_size: int, what: str = "train.batch_size", grad_accum_steps: int = 1) -> None:
    """Raises a one-line `UserError` unless the global batch splits evenly over the data axes.

    (Under jit, XLA lays out gradient-accumulation micro-batches itself: `grad_accum_steps` only
    has to divide the global batch, which the loop checks.)
    """
    del grad_accum_steps
    if global_batch_size % self.data_parallel_size:
      raise UserError(
        f"{what}={global_batch_size} is not divisible by the data-parallel size "
        f"{self.data_parallel_size} (mesh data={self.mesh.shape['data']} x "
        f"fsdp={self.mesh.shape['fsdp']})"
      )
    if global_batch_size % jax.process_count():
      raise UserError(f"{what}={global_batch_size} is not divisible by {jax.process_count()} processes")

  def check_model(self, model_config) -> None:
    """Raises a one-line `UserError` when a mesh axis does not divide the model dimension the rules
    shard over it (e.g. mesh.tensor vs. attention heads or MLP width), before any data is read."""
    self.rules = rules_lib.fit_rules(self.rules, self.mesh, rules_lib.model_dims(model_config))
    for logical, size in rules_lib.model_dims(model_config).items():
      rules_lib.check_dim(logical, size, self.mesh, self.rules)

  def init_state(self, make_state, boxed_init, rng) -> TrainState:
    """Creates the TrainState directly sharded: never materialized whole on one device.

    Args:
      make_state: fn(params, rng) -> TrainState (`TrainState.create`: unboxed params in, optimizer state built).
      boxed_init: fn(rng) -> boxed params (with logical axis metadata).
      rng: the init key.

    Returns:
      The sharded TrainState; `self.state_shardings` is set as a side effect.
    """
    return self.init_program(make_state, boxed_init, rng)(rng)

  def init_program(self, make_state, boxed_init, rng):
    """The jitted initializer `init_state` runs (arguments as there); sets `self.state_shardings`.

    Shapes come from `jax.eval_shape` (nothing is computed), the layout from the logical axis
    rules; with them as `out_shardings`, XLA partitions the initializers themselves, so each device
    draws only its own shard of every parameter (random bits do not depend on the sharding:
    the state equals the one-device state).
    """
    abstract_boxed = jax.eval_shape(boxed_init, rng)
    specs = rules_lib.param_specs(abstract_boxed)
    self.rules = rules_lib.fit_rules(self.rules, self.mesh, rules_lib.param_dims(specs, nn.meta.unbox(abstract_boxed)))
    rules_lib.check_params_divisible(specs, nn.meta.unbox(abstract_boxed), self.mesh, self.rules)

    def init(rng):
      return make_state(nn.meta.unbox(boxed_init(rng)), rng)

    self.state_shardings = self.shardings_for(jax.eval_shape(init, rng), specs)
    return jax.jit(init, out_shardings=self.state_shardings)

  def shardings_for(self, abstract_state: TrainState, specs_of_params) -> TrainState:
    """NamedShardings for every array of a TrainState, from the parameters' logical specs."""
    mesh_specs = rules_lib.to_mesh_shardings(specs_of_params, self.mesh, self.rules)
    opt_specs = rules_lib.opt_state_specs(abstract_state.tx, abstract_state.opt_state, mesh_specs)
    opt_specs = jax.tree.map(
      lambda s: self.replicated if isinstance(s, P) else s,
      opt_specs,
      is_leaf=lambda x: isinstance(x, (P, NamedSharding)),
    )
    return abstract_state.replace(
      step=self.replicated, params=mesh_specs, opt_state=opt_specs, rng=self.replicated, skipped=self.replicated
    )

  def compile_train_step(self):
    """The jitted train step: (state, batch, rng) -> (state, metrics), state donated."""
    jitted = jax.jit(
      _own(step_lib.train_step),
      donate_argnums=(0,),
      in_shardings=(self.state_shardings, self.batch_sharding, self.replicated),
      out_shardings=(self.state_shardings, self.replicated),
    )
    return self._in_mesh(jitted)

  def compile_eval_step(self):
    """The jitted eval step: (state, batch, rng) -> aux sums (replicated)."""
    jitted = jax.jit(
      _own(step_lib.eval_step),
      in_shardings=(self.state_shardings, self.batch_sharding, self.replicated),
      out_shardings=self.replicated,
    )
    return self._in_mesh(jitted)

  def _in_mesh(self, fn):
    @functools.wraps(fn)
    def wrapped(*args):
      with jax.set_mesh(self.mesh), nn.logical_axis_rules(self.rules):
        return fn(*args)

    wrapped.jitted = fn
    return wrapped

  def put_batch(self, host_batch: dict) -> dict:
    """Process-local numpy batch → global arrays sharded over the data axes, with each row's
    global `example_index` (see `parallel/batch.py`)."""
    return {
      k: jax.make_array_from_process_local_data(self.batch_sharding, np.asarray(v))
      for k, v in batch_lib.add_global_example_index(host_batch).items()
    }

  def put_replicated(self, x):
    """`x` (e.g. a step's RNG key) as one global array replicated on every device."""
    return jax.device_put(x, self.replicated)


def create(mesh_config, devices=None):
  """The strategy `mesh.strategy` names, over all (or the given) devices."""
  if mesh_config.strategy == "jit":
    return JitStrategy(mesh_config, devices)
  if mesh_config.strategy == "pmap":
    return PmapStrategy(mesh_config, devices)
  raise UserError(f"mesh.strategy={mesh_config.strategy!r}; choose jit or pmap")


def _own(step_fn):
  """`step_fn` under an identity of its own, for one strategy's jit.

  JAX keeps a function's compiled programs for as long as the function lives; the module-level step
  functions live for the whole process, so every training run in a long-lived process (a sweep in
  a notebook, the test suite) would keep its executables forever. On CPU each one holds hundreds of
  memory mappings, and once a process reaches the kernel's `vm.max_map_count` (65530 by default)
  XLA's compiler crashes with a segfault. A run's own identity lets its programs go with the run.
  """
  return functools.partial(step_fn)
