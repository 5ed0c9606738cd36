"""Logical axis rules → shardings for parameters, optimizer state and batches."""
from __future__ import annotations

import flax.linen as nn
import jax
import optax
from jax.sharding import NamedSharding, PartitionSpec as P


def rules_from_config(mesh_config) -> tuple:
  """`mesh.rules` as the tuple of (logical name, mesh axes) pairs flax expects."""
  return tuple((name, tuple(axes) if isinstance(axes, list) else axes) for name, axes in mesh_config.rules)


def param_specs(boxed_params) -> dict:
  """PartitionSpecs of logical axis names for (abstract) boxed parameters."""
  return nn.get_partition_spec(boxed_params)


def opt_state_specs(tx: optax.GradientTransformation, abstract_opt_state, specs_of_params):
  """Optimizer-state specs: parameter-shaped subtrees follow the parameters, the rest replicate."""
  return optax.tree_map_params(tx, lambda _, spec: spec, abstract_opt_state, specs_of_params,
                               transform_non_params=lambda _: P(),
                               is_leaf=lambda x: isinstance(x, P))


def to_mesh_shardings(logical_specs, mesh, rules):
  """Maps a tree of logical PartitionSpecs to NamedShardings on `mesh`."""
  return nn.logical_to_mesh_sharding(logical_specs, mesh, rules)


def batch_sharding(mesh) -> NamedSharding:
  """Batches split their leading dimension over the data-parallel axes (data × fsdp)."""
  return NamedSharding(mesh, P(("data", "fsdp")))
