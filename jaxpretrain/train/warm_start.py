"""Warm start: a fresh TrainState whose encoder comes from another run's checkpoint.

`init_from=PRETRAIN_WORKDIR` restores only `params['encoder']` (embeddings, layers, and the pooler
where the checkpoint has one) through orbax's partial restore, straight onto this run's shardings;
the head, the optimizer state and the step stay freshly initialized. Shapes are compared before
anything is read, so a checkpoint of another size or vocabulary fails with the first mismatching
leaf named. `init_from=hf:PATH` is delegated to `jaxpretrain.hf.warm_start`.
"""

from __future__ import annotations

from jaxpretrain import checkpoint as checkpoint_lib
from jaxpretrain.checkpoint.init_from import source_run, tokenizer_dir  # noqa: F401 (re-exported)
from jaxpretrain.errors import UserError

# Leaves a checkpoint may lack (the model then keeps their fresh initialization): GPT-style and
# other pooler-less pretraining runs have no [CLS] pooler.
OPTIONAL = ("pooler",)


def apply(config, state, strategy):
  """Returns `state` with `params['encoder']` restored from `config.init_from`.

  Args:
    config: the run config (`init_from`, `init_step`: -1 = the newest step that loads; a given
      step that is corrupt is an error).
    state: the freshly initialized, sharded TrainState.
    strategy: the run's strategy (passed on to the HF warm start).

  Returns:
    The state with the pretrained encoder; everything else unchanged.
  """
  if config.init_from.startswith("hf:"):
    from jaxpretrain import hf

    return hf.warm_start(config, state, strategy)
  run = source_run(config)
  flat_wanted = checkpoint_lib.flat_leaves(state.params["encoder"])

  def read_encoder(step: int) -> dict:
    state_dir = checkpoint_lib.item_path(run, step)
    what = f"init_from={config.init_from} (step {step})"
    saved = checkpoint_lib.saved_tree(state_dir)
    if "params" not in saved or "encoder" not in saved["params"]:
      raise UserError(f"{what} holds no params/encoder: not a jaxpretrain checkpoint")
    keep = checkpoint_lib.check_shapes(
      checkpoint_lib.flat_leaves(saved["params"]["encoder"]),
      flat_wanted,
      _encoder_mismatch(what),
      optional=lambda name: name.split("/")[0] in OPTIONAL,
    )
    target = nested({p: leaf for p, leaf in flat_wanted.items() if p in keep})
    return checkpoint_lib.restore_subtree(state_dir, {"params": {"encoder": target}})["params"]["encoder"]

  # init_step, else the newest step that loads (past a corrupt latest step, with a warning).
  _, _, restored = checkpoint_lib.read_step(run, read_encoder, config.init_step, what=f"init_from={config.init_from}")
  merged = nested({**flat_wanted, **checkpoint_lib.flat_leaves(restored)})
  return state.replace(params={**state.params, "encoder": merged})


def _encoder_mismatch(what: str):
  """The `check_shapes` message for an encoder that does not fit this config's model.*."""

  def mismatch(name, there, here):
    if there is None:
      return f"{what} has no encoder leaf {name} (this config has shape {here}); are model.* the pretraining run's?"
    if here is None:
      return (
        f"{what} has encoder leaf {name} with shape {there} that this config lacks; are model.* the pretraining run's?"
      )
    return (
      f"{what}: encoder leaf {name} has shape {there} in the checkpoint but {here} in this config "
      "(model.* must match the pretraining run)"
    )

  return mismatch


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
