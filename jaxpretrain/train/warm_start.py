"""Warm start: a fresh TrainState whose encoder comes from another run's checkpoint.

`init_from=PRETRAIN_WORKDIR` restores only `params['encoder']` (embeddings, layers, and the pooler
where the checkpoint has one) through orbax's partial restore, straight onto this run's shardings;
the head, the optimizer state and the step stay freshly initialized, except an untied output
embedding (`head/output_embedding`, Llama's `lm_head`): it is the language model's own vocabulary
projection, which a causal-LM fine-tune (translation) reuses as a tied one does through the
encoder's token embeddings; it is read when both runs have one of the same shape. Shapes are compared before
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
  state = merge(state, read_encoder(config, state))
  if "output_embedding" not in state.params.get("head", {}):
    return state
  embedding = read_output_embedding(config, state)
  if embedding is None:
    return state
  return state.replace(params={**state.params, "head": {**state.params["head"], "output_embedding": embedding}})


def read_output_embedding(config, state):
  """The untied `head/output_embedding` of `config.init_from` onto `state`'s sharding, or None
  when that run has none of this shape (a tied or MLM source: the fine-tune's stays fresh)."""
  run = source_run(config)
  wanted = state.params["head"]["output_embedding"]

  def read(step: int):
    state_dir = checkpoint_lib.item_path(run, step)
    saved = checkpoint_lib.saved_tree(state_dir).get("params", {}).get("head", {})
    if "output_embedding" not in saved or tuple(saved["output_embedding"].shape) != tuple(wanted.shape):
      return None
    target = {"params": {"head": {"output_embedding": wanted}}}
    return checkpoint_lib.restore_subtree(state_dir, target)["params"]["head"]["output_embedding"]

  _, _, restored = checkpoint_lib.read_step(run, read, config.init_step, what=f"init_from={config.init_from}")
  return restored


def read_encoder(config, state) -> dict:
  """The encoder leaves of the pretraining run `config.init_from` that `state` takes (a run's
  workdir, not `hf:`), read onto the shardings of `state`'s own leaves.

  Args:
    config: as for `apply`.
    state: a TrainState of this config (its encoder gives the shapes and shardings wanted).

  Returns:
    {"path/to/leaf": array} of the leaves the checkpoint holds (an `OPTIONAL` one it lacks is absent).
  """
  run = source_run(config)
  flat_wanted = checkpoint_lib.flat_leaves(state.params["encoder"])

  def read(step: int) -> dict:
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
  _, _, restored = checkpoint_lib.read_step(run, read, config.init_step, what=f"init_from={config.init_from}")
  return checkpoint_lib.flat_leaves(restored)


def merge(state, restored: dict):
  """`state` with the encoder leaves in `restored` ({"path": array}, from `read_encoder`) put in."""
  merged = nested({**checkpoint_lib.flat_leaves(state.params["encoder"]), **restored})
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
