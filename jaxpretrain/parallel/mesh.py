"""The (data, fsdp, tensor) device mesh from `config.mesh`."""

from __future__ import annotations

import math

import jax
import jax.experimental.mesh_utils
import numpy as np
from jax.sharding import Mesh

from jaxpretrain.errors import UserError

AXES = ("data", "fsdp", "tensor")


def mesh_shape(mesh_config, num_devices: int) -> tuple[int, int, int]:
  """Resolves (data, fsdp, tensor) sizes; at most one may be -1 (= the devices left over).

  Raises:
    UserError: when the sizes do not multiply to the device count.
  """
  sizes = [int(mesh_config.data), int(mesh_config.fsdp), int(mesh_config.tensor)]
  if sizes.count(-1) > 1:
    raise UserError(f"mesh: at most one of data/fsdp/tensor may be -1, got {sizes}")
  if any(s == 0 or s < -1 for s in sizes):
    raise UserError(f"mesh: sizes must be positive or -1, got data={sizes[0]} fsdp={sizes[1]} tensor={sizes[2]}")
  known = math.prod(s for s in sizes if s != -1)
  if -1 in sizes:
    if num_devices % known:
      raise UserError(f"mesh: {num_devices} devices are not divisible by the fixed axes' product {known}")
    sizes[sizes.index(-1)] = num_devices // known
  if math.prod(sizes) != num_devices:
    raise UserError(
      f"mesh: data={sizes[0]} x fsdp={sizes[1]} x tensor={sizes[2]} = {math.prod(sizes)} "
      f"devices, but {num_devices} are available"
    )
  return tuple(sizes)


def make_mesh(mesh_config, devices=None) -> Mesh:
  """A `Mesh` with axes (data, fsdp, tensor) over all (or the given) devices."""
  devices = jax.devices() if devices is None else devices
  shape = mesh_shape(mesh_config, len(devices))
  try:
    # Topology-aware on TPU; on GPU and CPU, devices in id order, so the inner axes (fsdp, tensor)
    # fall on devices of one host and only `data` crosses hosts.
    device_array = jax.experimental.mesh_utils.create_device_mesh(shape, devices=devices)
  except (ValueError, NotImplementedError):  # a shape the TPU torus cannot map: plain order still works
    device_array = np.asarray(devices).reshape(shape)
  return Mesh(device_array, AXES)
