"""`mesh.strategy = "pmap"`: classic data parallelism with `jax.pmap`.

Every device holds the whole TrainState; each computes loss and gradient *sums* on its rows of the
global batch, `train_step(..., axis_name="batch")` psums them, and every device applies the same
update. The state is passed with `in_axes=None`/`out_axes=None`: it stays one replicated global
array per leaf (no leading device axis), so the loop, checkpoints and metrics see exactly what they
see under `JitStrategy`. Only the batch has a device axis: [devices, rows per device, ...].
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxpretrain.errors import UserError
from jaxpretrain.parallel import batch as batch_lib
from jaxpretrain.parallel import mesh as mesh_lib
from jaxpretrain.train import step as step_lib
from jaxpretrain.train.state import TrainState

AXIS = "batch"


class PmapStrategy:
  """`jax.pmap` over all devices (or `devices`): replicated parameters, psum'd gradients."""

  name = "pmap"

  def __init__(self, mesh_config, devices=None):
    if int(mesh_config.fsdp) != 1 or int(mesh_config.tensor) != 1:
      raise UserError(
        f"mesh.strategy=pmap replicates parameters: it needs mesh.fsdp=1 and mesh.tensor=1, "
        f"got fsdp={mesh_config.fsdp} tensor={mesh_config.tensor} (use mesh.strategy=jit)"
      )
    devices = jax.devices() if devices is None else list(devices)
    mesh_lib.mesh_shape(mesh_config, len(devices))  # the same one-line error for a wrong mesh.data
    # Grouped by process, as pmap orders a multi-process axis.
    self.devices = tuple(sorted(devices, key=lambda d: (d.process_index, d.id)))
    self.mesh = Mesh(np.asarray(self.devices), (AXIS,))
    self.local_devices = [d for d in self.devices if d.process_index == jax.process_index()]
    self.data_parallel_size = len(self.devices)
    self.replicated = NamedSharding(self.mesh, P())
    # Batches go in as pmap expects them: host-local [local devices, rows, ...].
    self.local_batch_sharding = NamedSharding(self.mesh.local_mesh, P(AXIS))
    self.state_shardings = None

  def check_batch_size(self, global_batch_size: int, what: str = "train.batch_size", grad_accum_steps: int = 1) -> None:
    """Raises a one-line `UserError` unless every device gets the same number of rows, divisible
    into `grad_accum_steps` micro-batches."""
    devices = self.data_parallel_size
    if global_batch_size % devices:
      raise UserError(
        f"{what}={global_batch_size} is not divisible by the data-parallel size {devices} (pmap over {devices} devices)"
      )
    if (global_batch_size // devices) % grad_accum_steps:
      raise UserError(
        f"{what}={global_batch_size} gives {global_batch_size // devices} rows per device, "
        f"not divisible by train.grad_accum_steps={grad_accum_steps}"
      )

  def check_model(self, model_config) -> None:
    """Nothing to check: parameters are replicated, any model shape fits."""
    del model_config

  def init_state(self, make_state, boxed_init, rng) -> TrainState:
    """Creates the TrainState replicated on every device (each device computes the same init).

    Args:
      make_state: fn(params, rng) -> TrainState (`TrainState.create`).
      boxed_init: fn(rng) -> boxed params (their logical axis metadata is dropped).
      rng: the init key.

    Returns:
      The replicated TrainState; `self.state_shardings` is set as a side effect.
    """
    return self.init_program(make_state, boxed_init, rng)(rng)

  def init_program(self, make_state, boxed_init, rng):
    """The jitted initializer `init_state` runs (arguments as there; any key of the same kind may
    be passed to it later); sets `self.state_shardings`."""

    def init(rng):
      return make_state(nn.meta.unbox(boxed_init(rng)), rng)

    self.state_shardings = jax.tree.map(lambda _: self.replicated, jax.eval_shape(init, rng))
    return jax.jit(init, out_shardings=self.state_shardings)

  def _pmap(self, fn, donate: bool):
    return jax.pmap(
      functools.partial(fn, axis_name=AXIS),
      axis_name=AXIS,
      in_axes=(None, 0, None),
      out_axes=None,
      devices=self.devices,
      donate_argnums=(0,) if donate else (),
    )

  def _global(self, tree):
    # Several processes: pmap hands back host-local arrays; make them global again (a re-wrap, no
    # copy) so checkpoints and the next step see the same arrays as on one process.
    if jax.process_count() == 1:
      return tree
    return multihost_utils.host_local_array_to_global_array(tree, self.mesh, P())

  def compile_train_step(self):
    """The pmapped train step: (state, batch, rng) -> (state, metrics); state donated."""
    pmapped = self._pmap(step_lib.train_step, donate=True)

    @functools.wraps(step_lib.train_step)
    def train_step(state, batch, rng):
      return self._global(pmapped(state, batch, rng))

    train_step.pmapped = pmapped
    return train_step

  def compile_eval_step(self):
    """The pmapped eval step: (state, batch, rng) -> aux sums over all devices."""
    pmapped = self._pmap(step_lib.eval_step, donate=False)

    @functools.wraps(step_lib.eval_step)
    def eval_step(state, batch, rng):
      return self._global(pmapped(state, batch, rng))

    eval_step.pmapped = pmapped
    return eval_step

  def put_batch(self, host_batch: dict) -> dict:
    """Process-local numpy batch → [local devices, rows per device, ...] arrays on the local devices,
    with each row's global `example_index` (see `parallel/batch.py`)."""
    n = len(self.local_devices)

    def put(x):
      x = np.asarray(x)
      return jax.device_put(x.reshape((n, x.shape[0] // n) + x.shape[1:]), self.local_batch_sharding)

    return {k: put(v) for k, v in batch_lib.add_global_example_index(host_batch).items()}

  def put_replicated(self, x):
    return jax.device_put(x, self.replicated)
