"""`init_from = "hf:PATH_OR_ID"`: the model config, tokenizer and weights of an HF checkpoint.

`apply_hf_config` runs first (in `loop.run`): it sets `config.model.*` from config.json and
points `data.tokenizer` at the checkpoint. `warm_start` runs once the TrainState exists: it
fills `state.params` from the checkpoint's tensors, leaf by leaf on the strategy's shardings,
and says which parameters start fresh (a head the checkpoint does not have for this task).
"""

from __future__ import annotations

import jax
import numpy as np

from jaxpretrain import config as config_lib
from jaxpretrain.checkpoint.init_from import adopt_architecture
from jaxpretrain.errors import UserError, warn
from jaxpretrain.hf import families, import_config, layout, mapping, source
from jaxpretrain.models.config import ARCHITECTURE_KEYS


def apply_hf_config(config) -> None:
  """Sets `config.model.*` from the HF checkpoint `config.init_from` names, in place.

  Dimensions, activation, LayerNorm eps, position and type embeddings (every architecture key)
  come from config.json (an override that contradicts them is an error: `adopt_architecture`);
  dropout rates too, unless the config changed them from their defaults, and likewise the task
  keys the checkpoint's head implies (ModernBERT's `classifier_pooling` → `task.pooling`). `data.tokenizer` is set
  to the checkpoint directory and `init_from` to `hf:LOCAL_DIR` (so a Hub id is fetched once).

  Args:
    config: the run config; `init_from` starts with `hf:`.
  """
  spec = source.strip_scheme(config.init_from)
  directory = source.resolve(spec, allow_pickle=config.hf_allow_pickle)
  hf = source.read_config(directory)
  family, _, _ = families.identify(hf, f"hf:{spec}")
  fields = import_config.model_fields(hf, family, config.task.name, f"hf:{spec}")
  adopt_architecture(config, {k: v for k, v in fields.items() if k in ARCHITECTURE_KEYS}, f"init_from=hf:{spec}")
  default_model = config_lib.defaults().model
  for key, value in fields.items():
    if key in ARCHITECTURE_KEYS:
      continue
    if key in import_config.DROPOUT_KEYS and config.model[key] != default_model[key]:
      continue  # a training choice the user made explicitly
    config.model[key] = value
  default_task = config_lib.defaults().task
  for key, value in import_config.task_fields(hf, family).items():
    chosen = f"task.{key}" in config.overridden_keys or config.task.get(key, default_task[key]) != default_task[key]
    if not chosen:
      config.task[key] = value
  config.model.preset = f"hf:{spec}"
  if config.init_weights:
    source.weight_files(directory, allow_pickle=config.hf_allow_pickle)  # fail now, not after data prep
  _check_tokenizer(directory, config.model.vocab_size)
  config.data.tokenizer = directory
  config.init_from = f"hf:{directory}"


def _check_tokenizer(directory: str, vocab_size: int) -> None:
  from jaxpretrain.data.tokenizer import Tokenizer

  tokenizer = Tokenizer.load(directory)
  if tokenizer.vocab_size > vocab_size:
    raise UserError(
      f"the tokenizer in {directory} has {tokenizer.vocab_size} tokens but config.json says "
      f"vocab_size={vocab_size}: ids past {vocab_size - 1} would have no embedding"
    )


def import_params(
  directory: str, model, task_name: str, template: dict, *, allow_pickle: bool = False
) -> tuple[dict, list[str]]:
  """Our parameter values from an HF checkpoint, for the leaves of `template` it provides.

  Args:
    directory: the HF checkpoint directory.
    model: the run's `ModelConfig` (as `apply_hf_config` set it).
    task_name: the run's task; the checkpoint's head is imported only for the same task.
    template: flat {path: array or ShapeDtypeStruct} of our parameters (`layout.flatten`).
    allow_pickle: accept `.bin` weights.

  Returns:
    ({template path: numpy array}, notes about what was not imported).
  """
  hf = source.read_config(directory)
  family, arch, hf_task = families.identify(hf, directory)
  tensors = mapping.normalize_keys(source.load_tensors(directory, allow_pickle=allow_pickle), family)
  notes = []
  rule_list = mapping.rules(family, model, task_name if hf_task else None, pooler=True)
  if hf_task and hf_task != task_name:  # only what every head of the family shares (ModernBERT's `head`)
    rule_list = [rule for rule in rule_list if rule.part != "head"]
    shared = [p for rule in rule_list if rule.part == "shared" for p in rule.ours]
    kept = f" except {', '.join(layout.group(shared))} (both architectures have it)" if shared else ""
    notes.append(f"the {arch} head serves task {hf_task}, not {task_name}: the {task_name} head starts fresh{kept}")
  shapes = layout.canonical_shapes(template)
  absent = [
    k
    for rule in rule_list
    if rule.part == "encoder"
    and rule.ours
    and all(p in shapes for p in rule.ours)
    and not rule.ours[0].startswith("encoder/pooler/")
    for k in rule.hf
    if k not in tensors
  ]
  if absent:  # a silently random encoder would look like a bad fine-tune, not like a bad checkpoint
    raise UserError(
      f"{directory}: the {arch} checkpoint has no tensor {absent[0]} ({len(absent)} encoder tensors missing)"
    )
  canonical, skipped = mapping.to_ours(tensors, rule_list, shapes)
  for path in layout.unused_paths(model):
    if path in shapes:  # a scanned model's unused row: any value does
      canonical[path] = layout.placeholder(path, shapes[path])
  for _, why in skipped:
    notes.append(f"not imported ({why}): starts fresh")
  values = layout.from_canonical(template, canonical)
  fresh = [p for p in template if p not in values]
  if fresh:
    notes.append(f"freshly initialized (not in the {arch} checkpoint): {', '.join(layout.group(fresh))}")
  used = {k for rule in rule_list if all(p in canonical for p in rule.ours) and rule.ours for k in rule.hf}
  used |= {k for rule, _ in skipped for k in rule.hf}  # already noted
  ignorable = (
    ".position_ids",
    ".attn.bias",
    ".attn.masked_bias",
    "lm_head.weight",
    "predictions.decoder.weight",
    "predictions.decoder.bias",
    "lm_head.decoder.weight",
    "lm_head.decoder.bias",
    "decoder.weight",
    ".rotary_emb.inv_freq",
  )  # buffers and tied copies of imported tensors
  unused = [k for k in tensors if k not in used and not k.endswith(ignorable)]
  if unused:
    notes.append(f"unused from the checkpoint: {', '.join(layout.group(unused))}")
  return values, notes


def warm_start(config, state, strategy):
  """`state` with its parameters loaded from the `hf:` checkpoint (fresh with `init_weights=False`).

  Args:
    config: the run config (after `apply_hf_config`).
    state: the freshly initialized, sharded TrainState.
    strategy: the run's strategy (unused: each leaf keeps the sharding it was created with).

  Returns:
    The TrainState with imported parameters; the optimizer state is untouched (fresh).
  """
  del strategy  # the template leaves carry their shardings
  directory = source.strip_scheme(config.init_from)
  if not config.init_weights:
    warn(f"init_weights=False: the {config.model.preset} architecture with fresh random weights", kind="note")
    return state
  from jaxpretrain.models.config import ModelConfig

  template = layout.flatten(state.params)
  values, notes = import_params(
    directory, ModelConfig.from_config(config.model), config.task.name, template, allow_pickle=config.hf_allow_pickle
  )
  for message in notes:
    warn(f"hf: {message}", kind="note")
  flat = {path: _put(values[path], leaf) if path in values else leaf for path, leaf in template.items()}
  return state.replace(params=layout.unflatten(flat))


def _put(value: np.ndarray, like: jax.Array) -> jax.Array:
  """`value` laid out like `like` (dtype, sharding); each process builds only its own shards."""
  value = np.asarray(value, dtype=like.dtype)
  return jax.make_array_from_callback(like.shape, like.sharding, lambda index: value[index])
