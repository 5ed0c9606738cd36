"""`jaxpretrain export`: a run's checkpoint as an HF directory PyTorch `transformers` loads.

Writes config.json (BertConfig / RobertaConfig / GPT2Config / ModernBertConfig / LlamaConfig with
the task architecture), model.safetensors (the same tensor names and layout `save_pretrained`
writes, tied weights omitted), generation_config.json for a causal LM, and the run's tokenizer files with the model's
input length as `model_max_length` (a decoder's tokenizer encodes a prompt as `jaxpretrain
generate` does). `transformers.pipeline` then runs each export for its task: fill-mask,
text-classification, token-classification or text-generation. On inputs longer than the model,
token-classification truncates by default; text-classification needs `truncation=True`,
fill-mask `tokenizer_kwargs={"truncation": True}` and text-generation
`handle_long_generation="hole"`, as transformers truncates nothing there unless asked (QA exports
have no pipeline: transformers 5 dropped question-answering).

The directory is written whole or not at all: everything goes into a temporary sibling directory
that is then renamed into place, so a failed export leaves an existing `--out` as it was and no
file of an earlier export (or of anything else) survives beside the new ones. A non-empty `--out`
is replaced only with `overwrite=True`, and never when it is (or is inside, or holds) a
jaxpretrain run directory.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile

import numpy as np

from jaxpretrain import checkpoint as checkpoint_lib
from jaxpretrain import config as config_lib
from jaxpretrain import files, paths
from jaxpretrain.data.common import boundary_ids
from jaxpretrain.errors import UserError, storage_errors
from jaxpretrain.hf import export_config, families, layout, mapping
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
  unused = layout.unused_paths(model)
  canonical = {p: v for p, v in layout.to_canonical(layout.flatten(params)).items() if p not in unused}
  with_pooler = registry.spec(task_name).hf_pooler and families.FAMILIES[family].pooler
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
  out: str,
  params: dict,
  model,
  task_name: str,
  special_ids: dict,
  *,
  label_names: list | None = None,
  problem_type: str = "",
  pooling: str = "cls",
  classifier_dropout: float = 0.0,
) -> str:
  """Writes config.json and model.safetensors of the task architecture into `out`.

  Args:
    out: the directory (created).
    params: our nested parameter tree.
    model: the `ModelConfig`.
    task_name: the task whose head `params` has.
    special_ids: the tokenizer's special ids (`Tokenizer.special_ids`: pad/bos/eos go into
      config.json, and a causal LM's generation_config.json).
    label_names: label names in id order, when known.
    problem_type: the HF config's `problem_type` (the run's `TaskSpec.hf_problem_type`; "" = none).
    pooling: the run's `task.pooling` (ModernBERT's `classifier_pooling`).
    classifier_dropout: the run's `task.classifier_dropout` (written where the family has the field).

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
  hf_config = export_config.hf_config(
    model,
    family,
    arch,
    special_ids,
    num_labels=num_labels,
    label_names=label_names,
    problem_type=problem_type,
    pooling=pooling,
    classifier_dropout=classifier_dropout,
  )
  os.makedirs(out, exist_ok=True)
  hf_config.save_pretrained(out)
  if registry.spec(task_name).decoder:
    export_config.generation_config(model, special_ids).save_pretrained(out)
  # transformers refuses safetensors files without format metadata.
  save_file(tensors, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
  return arch


def hf_tokenizer(tokenizer, model, task_name: str):
  """The run's tokenizer as an export writes it (the run's own is left as it is).

  Its `model_max_length` is the model's input length (the run's says what its source said, 512
  for one trained here), where transformers' pipelines truncate; a GPT-2 export's returns no
  token types (a WordPiece tokenizer's would). A decoder's tokenizer encodes one text as
  `jaxpretrain generate` reads a prompt: `[BOS] text`, or `[BOS] source [SEP]` for a translation
  run, rather than `[CLS] text [SEP]`, which would end the prompt's document.

  Args:
    tokenizer: the run's `Tokenizer`.
    model: the run's `ModelConfig`.
    task_name: the run's `task.name` (not its export task: translation prompts end in [SEP]).

  Returns:
    A `transformers` fast tokenizer (save it with `save_pretrained`).
  """
  from tokenizers import processors

  hf = copy.deepcopy(tokenizer.hf)
  hf.model_max_length = families.max_input_length(model)
  if model.type_vocab_size == 0:
    # GPT-2 adds `wte(token_type_ids)` to every position when given token types, ModernBERT and
    # Llama take none, and a BERT exported with one zero type row has no row for type 1.
    hf.model_input_names = [n for n in hf.model_input_names if n != "token_type_ids"]
  spec = registry.spec(task_name)
  if spec.decoder:
    ids = boundary_ids(tokenizer.special_ids)
    bos, sep = (hf.convert_ids_to_tokens(i) for i in ids)
    single = [bos, "$A", sep] if spec.source_prompts else [bos, "$A"]
    template = processors.TemplateProcessing(
      single=single, pair=[*single, "$B:1"], special_tokens=sorted(set(zip((bos, sep), ids)))
    )
    current = hf.backend_tokenizer.post_processor
    # A byte-level (GPT-2) tokenizer's post-processor only trims offsets: keep it.
    is_byte_level = isinstance(current, processors.ByteLevel)
    hf.backend_tokenizer.post_processor = processors.Sequence([current, template]) if is_byte_level else template
  return hf


def export_run(workdir: str, out: str, step: int | None = None, *, overwrite: bool = False) -> dict:
  """Writes checkpoint `step` (default: the newest that loads) of the run in `workdir` as an HF directory.

  Args:
    workdir: a jaxpretrain run directory (config.json, tokenizer/, checkpoints/).
    out: the HF directory to write: absent or empty, or (with `overwrite`) a directory to replace
      whole. Never a run directory, a path inside one, or a directory holding one.
    step: the checkpoint step; None = the newest step that loads (a corrupt latest step is passed
      over with a warning); a given step that is corrupt is an error.
    overwrite: replace a non-empty `out` (its files are all removed, not merged).

  Returns:
    {"out", "step", "architecture"}.

  Raises:
    UserError: for a non-empty `out` without `overwrite`, an `out` that is or holds a run, a run
      that cannot be exported, or one without a loadable checkpoint; for a remote `workdir` or `out`.
  """
  from jaxpretrain.data.tokenizer import Tokenizer
  from jaxpretrain.models.config import ModelConfig

  for flag, path in (("--workdir", workdir), ("--out", out)):
    if paths.is_remote(path):
      raise UserError(
        f"{flag}={path}: export reads a local run and writes a local directory; copy the run down or the "
        "export up (e.g. gcloud storage cp -r)"
      )
  config = config_lib.load_saved(workdir)
  model = ModelConfig.from_config(config.model)
  # A translation run is a causal LM whose loss skipped the source: the same head, GPT2LMHeadModel.
  task_name = registry.spec(config.task.name).export_task
  family = families.family_of(model)
  arch = families.architecture_for(family, task_name)  # fail before reading weights
  pooling = config.task.get("pooling", "cls")
  if registry.spec(task_name).hf_pooler and pooling not in families.FAMILIES[family].poolings:
    raise UserError(
      f"{arch} classifies the pooled [CLS] token; this run used task.pooling={pooling}, which has no HF equivalent"
    )
  target = check_out(workdir, out, overwrite=overwrite)  # before any weights are read
  step, _, params = checkpoint_lib.read_step(
    workdir, lambda s: checkpoint_lib.restore_params(checkpoint_lib.item_path(workdir, s)), step
  )
  tokenizer = Tokenizer.load(os.path.join(workdir, "tokenizer"))
  if tokenizer.vocab_size > model.vocab_size:
    raise UserError(f"the run's tokenizer has {tokenizer.vocab_size} tokens but model.vocab_size={model.vocab_size}")

  def write(directory: str) -> None:
    write_hf(
      directory,
      params,
      model,
      task_name,
      tokenizer.special_ids,
      label_names=_label_names(workdir),
      problem_type=registry.spec(config.task.name).hf_problem_type,  # regression: a one-output classifier
      pooling=pooling,
      classifier_dropout=config.task.get("classifier_dropout", 0.0),
    )
    hf_tokenizer(tokenizer, model, config.task.name).save_pretrained(directory)

  replace_dir(target, write)
  return {"out": target, "step": int(step), "architecture": arch}


def _is_run(directory: str) -> bool:
  """Whether `directory` holds a jaxpretrain run (config.json and checkpoints/)."""
  return os.path.isfile(os.path.join(directory, "config.json")) and os.path.isdir(
    os.path.join(directory, "checkpoints")
  )


def _inside(path: str, directory: str) -> bool:
  """Whether `path` is `directory` or lies below it (both real, absolute paths)."""
  return os.path.commonpath([path, directory]) == directory


def check_out(workdir: str, out: str, *, overwrite: bool = False) -> str:
  """The real path an export may write to, or a UserError saying why `out` must not be written.

  Args:
    workdir: the run being exported.
    out: the `--out` directory.
    overwrite: whether a non-empty `out` may be replaced.

  Returns:
    The absolute, symlink-resolved path of `out` (a link is followed, its target replaced).

  Raises:
    UserError: when `out` is a file, is (or is inside, or holds) a run directory or `workdir`, or
      is non-empty without `overwrite`.
  """
  target = os.path.realpath(out)
  run = os.path.realpath(workdir)
  if _inside(target, run) or _inside(run, target):
    where = "is" if target == run else ("is inside" if _inside(target, run) else "holds")
    raise UserError(f"--out={out} {where} the run directory {workdir}; export to a directory outside it")
  parent = target
  while True:
    if _is_run(parent):
      raise UserError(
        f"--out={out} {'is' if parent == target else 'is inside'} the jaxpretrain run directory {parent}; "
        "export to a directory outside it"
      )
    if os.path.dirname(parent) == parent:
      break
    parent = os.path.dirname(parent)
  if os.path.lexists(target) and not os.path.isdir(target):
    raise UserError(f"--out={out} exists and is not a directory")
  if os.path.isdir(target) and os.listdir(target):
    if not overwrite:
      raise UserError(f"--out={out} is not empty; pass --overwrite to replace it whole (its files are all removed)")
    for directory, subdirs, _ in os.walk(target):
      if _is_run(directory):
        raise UserError(f"--out={out} holds the jaxpretrain run directory {directory}; --overwrite would delete it")
      subdirs[:] = [d for d in subdirs if not os.path.islink(os.path.join(directory, d))]
  return target


def replace_dir(target: str, write) -> None:
  """Fills a temporary sibling of `target` with `write(directory)`, then renames it to `target`.

  An existing `target` is moved aside first and removed only once the new directory is in place;
  if anything fails, the temporary directory is removed and `target` is left (or put back) as it
  was. Files get mode 0666 and directories 0777, less the umask (0644 and 0755 with the usual one).

  Args:
    target: the absolute directory path to (re)place; its parent is created if missing.
    write: fn(directory) that writes the new content into `directory`.
  """
  parent, name = os.path.split(target)
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(prefix=f".{name}.export-", dir=parent)
  try:
    with storage_errors(f"exporting to {target} (left as it was)"):
      write(staging)
    umask = os.umask(0)
    os.umask(umask)
    for directory, _, files in os.walk(staging):
      os.chmod(directory, 0o777 & ~umask)
      for f in files:
        os.chmod(os.path.join(directory, f), 0o666 & ~umask)
    if not os.path.exists(target):
      os.rename(staging, target)
      return
    old = tempfile.mkdtemp(prefix=f".{name}.replaced-", dir=parent)
    os.rename(target, os.path.join(old, name))
    try:
      os.rename(staging, target)
    except BaseException:
      os.rename(os.path.join(old, name), target)
      os.rmdir(old)
      raise
    shutil.rmtree(old, ignore_errors=True)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise


def _label_names(workdir: str) -> list | None:
  """Label names the fine-tuning data recorded in data_info.json, if any."""
  path = os.path.join(workdir, "data_info.json")
  if not os.path.isfile(path):
    return None
  info = files.read_json(path, "run file")
  return info.get("label_names") or info.get("labels")
