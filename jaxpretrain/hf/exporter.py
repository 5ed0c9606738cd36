"""`jaxpretrain export`: a run's checkpoint as an HF directory PyTorch `transformers` loads.

Writes config.json (BertConfig / RobertaConfig / GPT2Config with the task architecture),
model.safetensors (the same tensor names and layout `save_pretrained` writes, tied weights
omitted) and the run's tokenizer files.
"""

from __future__ import annotations

import json
import os

import numpy as np

from jaxpretrain import checkpoint as checkpoint_lib
from jaxpretrain import config as config_lib
from jaxpretrain.errors import UserError
from jaxpretrain.hf import families, layout, mapping
from jaxpretrain.tasks import registry


def hf_tensors(params: dict, model, family: str, task_name: str) -> dict[str, np.ndarray]:
  """HF tensors of the task architecture from our parameter tree.

  Args:
    params: the nested parameter tree (numpy or jax leaves).
    model: the run's `ModelConfig`.
    family: from `families.family_of`.
    task_name: the run's task.

  Returns:
    {HF tensor name: contiguous numpy array}.
  """
  canonical = layout.to_canonical(layout.flatten(params))
  with_pooler = registry.spec(task_name).hf_pooler
  if with_pooler and "encoder/pooler/dense/kernel" not in canonical:
    raise UserError(
      f"{families.architecture_for(family, task_name)} classifies the pooled [CLS] token; "
      f"this run has no pooler (model.use_pooler=false)"
    )
  rule_list = mapping.rules(family, model, task_name, pooler=with_pooler)
  used = {p for rule in rule_list for p in rule.ours}
  dropped = [p for p in canonical if p not in used and not (p.startswith("encoder/pooler/") and not with_pooler)]
  if dropped:
    raise UserError(
      f"parameters {', '.join(layout.group(dropped))} have no place in {families.architecture_for(family, task_name)}"
    )
  return mapping.to_hf(canonical, rule_list)


def write_hf(
  out: str, params: dict, model, task_name: str, special_ids: dict, *, label_names: list | None = None
) -> str:
  """Writes config.json and model.safetensors of the task architecture into `out`.

  Args:
    out: the directory (created).
    params: our nested parameter tree.
    model: the `ModelConfig`.
    task_name: the task whose head `params` has.
    special_ids: the tokenizer's special ids (pad/bos/eos go into config.json).
    label_names: label names in id order, when known.

  Returns:
    The architecture written (e.g. "BertForSequenceClassification").
  """
  from safetensors.numpy import save_file

  family = families.family_of(model)
  arch = families.architecture_for(family, task_name)
  tensors = hf_tensors(params, model, family, task_name)
  num_labels = 0
  for name in ("classifier.weight", "classifier.out_proj.weight"):
    if name in tensors:
      num_labels = tensors[name].shape[0]
  hf_config = families.hf_config(model, family, arch, special_ids, num_labels=num_labels, label_names=label_names)
  os.makedirs(out, exist_ok=True)
  hf_config.save_pretrained(out)
  # transformers refuses safetensors files without format metadata.
  save_file(tensors, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
  return arch


def export_run(workdir: str, out: str, step: int | None = None) -> dict:
  """Writes checkpoint `step` (default: latest) of the run in `workdir` as an HF directory.

  Args:
    workdir: a jaxpretrain run directory (config.json, tokenizer/, checkpoints/).
    out: the HF directory to write (created; existing files of the same names are replaced).
    step: the checkpoint step; None = the latest.

  Returns:
    {"out", "step", "architecture"}.
  """
  from jaxpretrain.data.tokenizer import Tokenizer
  from jaxpretrain.models.config import ModelConfig

  config = config_lib.load_saved(workdir)
  model = ModelConfig.from_config(config.model)
  # A translation run is a causal LM whose loss skipped the source: the same head, GPT2LMHeadModel.
  task_name = registry.spec(config.task.name).export_task
  arch = families.architecture_for(families.family_of(model), task_name)  # fail before reading weights
  if registry.spec(task_name).hf_pooler and config.task.get("pooling", "cls") != "cls":
    raise UserError(
      f"{arch} classifies the pooled [CLS] token; this run used task.pooling="
      f"{config.task.pooling}, which has no HF equivalent"
    )
  step, _ = checkpoint_lib.resolve_step(workdir, step)
  params = checkpoint_lib.restore_params(checkpoint_lib.item_path(workdir, step))
  tokenizer = Tokenizer.load(os.path.join(workdir, "tokenizer"))
  if tokenizer.vocab_size > model.vocab_size:
    raise UserError(f"the run's tokenizer has {tokenizer.vocab_size} tokens but model.vocab_size={model.vocab_size}")
  write_hf(out, params, model, task_name, tokenizer.special_ids, label_names=_label_names(workdir))
  tokenizer.save(out)
  return {"out": os.path.abspath(out), "step": int(step), "architecture": arch}


def _label_names(workdir: str) -> list | None:
  """Label names the fine-tuning data recorded in data_info.json, if any."""
  path = os.path.join(workdir, "data_info.json")
  if not os.path.isfile(path):
    return None
  with open(path) as f:
    info = json.load(f)
  return info.get("label_names") or info.get("labels")
