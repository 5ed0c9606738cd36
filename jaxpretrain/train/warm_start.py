"""Warm start: a fresh TrainState whose encoder comes from another run's checkpoint.

`init_from=PRETRAIN_WORKDIR` restores only `params['encoder']` (embeddings, layers, and the pooler
where the checkpoint has one) through orbax's partial restore, straight onto this run's shardings;
the head, the optimizer state and the step stay freshly initialized. Shapes are compared before
anything is read, so a checkpoint of another size or vocabulary fails with the first mismatching
leaf named. `init_from=hf:PATH` is delegated to `jaxpretrain.hf.warm_start`.
"""
from __future__ import annotations

import logging
import os

import jax
import orbax.checkpoint as ocp

from jaxpretrain import checkpoint as checkpoint_lib
from jaxpretrain.errors import UserError

# Leaves a checkpoint may lack (the model then keeps their fresh initialization): GPT-style and
# other pooler-less pretraining runs have no [CLS] pooler.
OPTIONAL = ("pooler",)


def source_run(config) -> str:
  """The checked absolute path of a workdir `init_from`: it exists and has a complete checkpoint."""
  path = config.init_from
  if not os.path.exists(path):
    raise UserError(f"init_from={path}: no such directory")
  if not os.path.isdir(path):
    raise UserError(f"init_from={path} is a file, not a run directory")
  checkpoint_lib.require_run(path).close()
  return os.path.abspath(path)


def tokenizer_dir(config) -> str:
  """The tokenizer directory of the run `init_from` names ("" without init_from).

  A fine-tune must read text exactly as the encoder was trained to, so the pretraining run's
  tokenizer wins over `data.tokenizer`. For `hf:PATH` it is the HF model directory itself.
  """
  if not config.init_from:
    return ""
  if config.init_from.startswith("hf:"):
    return config.data.tokenizer or config.init_from[len("hf:"):]
  run = source_run(config)
  path = os.path.join(run, "tokenizer")
  if not os.path.isdir(path):
    raise UserError(f"init_from={config.init_from} has no tokenizer/ directory")
  return path


def flat_paths(tree) -> dict[str, object]:
  """{"a/b/c": leaf} of a nested dict (flax params, orbax tree metadata)."""
  return {"/".join(str(getattr(k, "key", k)) for k in path): leaf
          for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def saved_tree(state_dir: str) -> dict:
  """The tree metadata (shapes, dtypes) of a saved TrainState, read without loading arrays."""
  absl_logger = logging.getLogger("absl")
  level = absl_logger.level
  absl_logger.setLevel(logging.ERROR)  # orbax warns about metadata files older saves lack
  try:
    metadata = ocp.PyTreeCheckpointer().metadata(state_dir)
  finally:
    absl_logger.setLevel(level)
  tree = getattr(metadata, "item_metadata", metadata)
  return tree.tree if hasattr(tree, "tree") else tree


def restore_subtree(state_dir: str, target: dict) -> dict:
  """Restores only the leaves of `target` (a nested dict of arrays or ShapeDtypeStructs with
  shardings, a sub-tree of the saved state) from `state_dir`, onto those shardings."""
  restore_args = jax.tree.map(lambda x: ocp.ArrayRestoreArgs(sharding=x.sharding, global_shape=x.shape,
                                                             dtype=x.dtype), target)
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), target)
  return ocp.PyTreeCheckpointer().restore(
      state_dir, args=ocp.args.PyTreeRestore(item=abstract, restore_args=restore_args, partial_restore=True))


def compatible_leaves(saved: dict, wanted: dict, what: str) -> set[str]:
  """The leaves of `wanted` to restore; a `UserError` naming the first leaf that does not match.

  Args:
    saved: flat {path: metadata with .shape} of the checkpoint's encoder.
    wanted: flat {path: array} of this run's encoder.
    what: how to name the checkpoint in messages.
  """
  for path in sorted(set(saved) | set(wanted)):
    optional = path.split("/")[0] in OPTIONAL
    if path not in saved and not optional:
      raise UserError(f"{what} has no encoder leaf {path} (this config has shape {tuple(wanted[path].shape)}); "
                      "are model.* the pretraining run's?")
    if path not in wanted and not optional:
      raise UserError(f"{what} has encoder leaf {path} with shape {tuple(saved[path].shape)} that this config "
                      "lacks; are model.* the pretraining run's?")
    if path in saved and path in wanted and tuple(saved[path].shape) != tuple(wanted[path].shape):
      raise UserError(f"{what}: encoder leaf {path} has shape {tuple(saved[path].shape)} in the checkpoint but "
                      f"{tuple(wanted[path].shape)} in this config (model.* must match the pretraining run)")
  return set(saved) & set(wanted)


def apply(config, state, strategy):
  """Returns `state` with `params['encoder']` restored from `config.init_from`.

  Args:
    config: the run config (`init_from`, `init_step`: -1 = the latest step).
    state: the freshly initialized, sharded TrainState.
    strategy: the run's strategy (passed on to the HF warm start).

  Returns:
    The state with the pretrained encoder; everything else unchanged.
  """
  if config.init_from.startswith("hf:"):
    from jaxpretrain import hf  # pylint: disable=import-outside-toplevel
    return hf.warm_start(config, state, strategy)
  run = source_run(config)
  ckpt = checkpoint_lib.Checkpointer(run, read_only=True)
  try:
    steps = ckpt.all_steps()
    step = ckpt.latest_step() if config.init_step < 0 else config.init_step
    if step not in steps:
      raise UserError(f"init_from={config.init_from} has no checkpoint at init_step={config.init_step} "
                      f"(it has {', '.join(map(str, sorted(steps)))})")
    state_dir = ckpt.item_path(step, "state")
  finally:
    ckpt.close()
  what = f"init_from={config.init_from} (step {step})"
  saved = saved_tree(state_dir)
  if "params" not in saved or "encoder" not in saved["params"]:
    raise UserError(f"{what} holds no params/encoder: not a jaxpretrain checkpoint")
  encoder = state.params["encoder"]
  flat_wanted = flat_paths(encoder)
  keep = compatible_leaves(flat_paths(saved["params"]["encoder"]), flat_wanted, what)
  target = nested({p: leaf for p, leaf in flat_wanted.items() if p in keep})
  restored = flat_paths(restore_subtree(state_dir, {"params": {"encoder": target}})["params"]["encoder"])
  merged = nested({**flat_wanted, **restored})
  return state.replace(params={**state.params, "encoder": merged})


def nested(flat: dict) -> dict:
  """The nested dict of a flat {"a/b/c": leaf} dict."""
  out: dict = {}
  for path, leaf in flat.items():
    node = out
    *parents, last = path.split("/")
    for key in parents:
      node = node.setdefault(key, {})
    node[last] = leaf
  return out
