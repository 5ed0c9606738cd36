"""Logical axis rules → shardings for parameters, optimizer state and batches."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxpretrain.errors import UserError
from jaxpretrain.parallel.mesh import AXES

# Where each logical parameter dimension's size comes from, for error messages.
SIZE_KEYS = {
  "vocab": "model.vocab_size",
  "embed": "model.hidden_size",
  "embed_out": "model.hidden_size",
  "heads": "model.num_attention_heads",
  "kv_heads": "model.num_key_value_heads",
  "kv": "the head size (model.hidden_size / model.num_attention_heads)",
  "mlp": "model.intermediate_size",
  "position": "model.max_position_embeddings",
  "type": "model.type_vocab_size",
  "layers": "model.num_hidden_layers",
  "labels": "the number of labels",
}


def rules_from_config(mesh_config) -> tuple:
  """`mesh.rules` as the tuple of (logical name, mesh axes) pairs flax expects.

  Raises:
    UserError: for a rule that is not [name, axes] or names an axis the mesh does not have.
  """
  rules = []
  for entry in mesh_config.rules:
    if not (isinstance(entry, (list, tuple)) and len(entry) == 2 and isinstance(entry[0], str)):
      raise UserError(f"mesh.rules: each rule is [logical_name, mesh_axes], got {entry!r}")
    name, axes = entry
    axes = tuple(axes) if isinstance(axes, (list, tuple)) else axes
    for axis in (axes,) if isinstance(axes, str) else axes or ():
      if axis not in AXES:
        raise UserError(f"mesh.rules: {name!r} maps to {axis!r}, not a mesh axis (choose from {', '.join(AXES)})")
    rules.append((name, axes))
  return tuple(rules)


def param_specs(boxed_params) -> dict:
  """PartitionSpecs of logical axis names for (abstract) boxed parameters."""
  return nn.get_partition_spec(boxed_params)


def opt_state_specs(tx: optax.GradientTransformation, abstract_opt_state, specs_of_params):
  """Optimizer-state specs: parameter-shaped subtrees follow the parameters, the rest replicate."""
  return optax.tree_map_params(
    tx,
    lambda _, spec: spec,
    abstract_opt_state,
    specs_of_params,
    transform_non_params=lambda _: P(),
    is_leaf=lambda x: isinstance(x, P),
  )


def to_mesh_shardings(logical_specs, mesh, rules):
  """Maps a tree of logical PartitionSpecs to NamedShardings on `mesh`."""
  return nn.logical_to_mesh_sharding(logical_specs, mesh, rules)


def batch_sharding(mesh) -> NamedSharding:
  """Batches split their leading dimension over the data-parallel axes (data × fsdp)."""
  return NamedSharding(mesh, P(("data", "fsdp")))


def model_dims(model_config) -> dict[str, int]:
  """Sizes of the encoder's logical parameter dimensions (known before any data is read)."""
  return {
    "vocab": model_config.vocab_size,
    "embed": model_config.hidden_size,
    "embed_out": model_config.hidden_size,
    "heads": model_config.num_attention_heads,
    "kv_heads": model_config.kv_heads,
    "kv": model_config.head_dim,
    "mlp": model_config.intermediate_size,
    "position": model_config.max_position_embeddings,
    "type": model_config.type_vocab_size,
    "layers": model_config.num_hidden_layers,
  }


def _shards(logical: str, mesh, rules) -> int:
  axes = nn.logical_to_mesh_axes((logical,), rules)[0]
  axes = () if axes is None else (axes,) if isinstance(axes, str) else tuple(axes)
  return math.prod(mesh.shape[a] for a in axes)


def fit_rules(rules: tuple, mesh, sizes: dict) -> tuple:
  """The rules with grouped-query key/value heads replicated where the mesh does not divide them.

  Few KV heads (multi-query: one) often do not divide the tensor axis that splits the query heads;
  they are small, so they stay whole on every device rather than failing the run.

  Args:
    rules: (logical name, mesh axes) pairs.
    mesh: the device mesh.
    sizes: logical dimension -> size (`model_dims`, or `param_dims` of the parameters).

  Returns:
    The rules, `kv_heads` and `act_kv_heads` mapped to None when their axes do not divide.
  """
  if sizes.get("kv_heads", 0) % _shards("kv_heads", mesh, rules) == 0:
    return rules
  return tuple((name, None if name in ("kv_heads", "act_kv_heads") else axes) for name, axes in rules)


def param_dims(logical_specs, abstract_params) -> dict:
  """Logical dimension -> size, read from the parameters' specs and shapes."""
  specs = jax.tree.leaves(logical_specs, is_leaf=lambda x: isinstance(x, P))
  return {
    name: size
    for spec, leaf in zip(specs, jax.tree.leaves(abstract_params))
    for name, size in zip(spec, leaf.shape)
    if isinstance(name, str)
  }


def check_dim(logical: str, size: int, mesh, rules, where: str = "") -> None:
  """Raises a one-line `UserError` when the mesh axes `logical` maps to do not divide `size`.

  Args:
    logical: a logical axis name (e.g. "heads").
    size: that dimension's size.
    mesh: the device mesh.
    rules: (logical name, mesh axes) pairs.
    where: the parameter the dimension belongs to, for the message.
  """
  axes = nn.logical_to_mesh_axes((logical,), rules)[0]
  axes = () if axes is None else (axes,) if isinstance(axes, str) else tuple(axes)
  shards = math.prod(mesh.shape[a] for a in axes)
  if size and size % shards:
    sizes = " x ".join(f"mesh.{a}={mesh.shape[a]}" for a in axes)
    what = SIZE_KEYS.get(logical, f"dimension {logical!r}")
    what = f"{what}={size}" if what.startswith("model.") else f"{what} ({size})"
    at = f" (dimension {logical!r} of {where})" if where else f" (dimension {logical!r})"
    raise UserError(f"{sizes} does not divide {what}{at}; change the mesh or mesh.rules")


def check_params_divisible(logical_specs, abstract_params, mesh, rules) -> None:
  """`check_dim` for every dimension of every parameter (shapes from `jax.eval_shape`)."""
  specs = jax.tree_util.tree_flatten_with_path(logical_specs, is_leaf=lambda x: isinstance(x, P))[0]
  shapes = jax.tree.leaves(abstract_params)
  for (path, spec), leaf in zip(specs, shapes):
    where = "/".join(str(getattr(k, "key", k)) for k in path)
    for logical, size in zip(spec, leaf.shape):
      if isinstance(logical, str):
        check_dim(logical, size, mesh, rules, where)
