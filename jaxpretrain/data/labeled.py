"""`build_labeled`: the `RunData` of a fine-tuning run (classification, token classification, QA).

Labeled data is small enough to hold in memory: records are read (`labeled_sources`), encoded once
(`features`), and batched from numpy arrays by `LabeledBatches`, whose order is a pure function of
(seed, step), so a checkpoint stores just the step.

The tokenizer is, in order: the run's own (WORKDIR/tokenizer, when resuming or evaluating), the
`init_from` run's, `data.tokenizer`, or a WordPiece vocabulary trained on the training texts. The
label vocabulary is saved in `data_info.json` (`label_names`) and reused by later runs on the
same workdir, so label ids never change under a resumed or evaluated model.
"""
from __future__ import annotations

import json
import math
import os

import jax
import numpy as np

from jaxpretrain.data import features as features_lib
from jaxpretrain.data.labeled_sources import read_examples
from jaxpretrain.data.pipeline import RunData
from jaxpretrain.data.prepare import held_out
from jaxpretrain.data.tokenizer import Tokenizer
from jaxpretrain.errors import UserError

TASKS = ("classification", "token_classification", "qa")
EMBEDDED_TRAIN_EXAMPLES = 1000   # the embedded task's defaults when data.*_examples is 0
EMBEDDED_EVAL_EXAMPLES = 2000


class LabeledBatches:
  """Endless batches of in-memory arrays, reshuffled every epoch; checkpointable by step.

  Global batch k holds rows k*B .. k*B+B-1 of the concatenation of epoch permutations (epoch e
  permuted by a generator seeded with (seed, e)); this process takes its contiguous slice.
  """

  def __init__(self, arrays: dict, global_batch_size: int, seed: int, *, process_index: int = 0,
               process_count: int = 1):
    self.arrays, self.batch, self.seed = arrays, global_batch_size, seed
    self.n = len(next(iter(arrays.values())))
    self.local = global_batch_size // process_count
    self.offset = process_index * self.local
    self.step = 0
    self._permutations: dict[int, np.ndarray] = {}

  def _permutation(self, epoch: int) -> np.ndarray:
    if epoch not in self._permutations:
      if len(self._permutations) > 4:
        self._permutations.clear()
      self._permutations[epoch] = np.random.default_rng([self.seed, epoch]).permutation(self.n)
    return self._permutations[epoch]

  def rows(self, step: int) -> np.ndarray:
    """Indices of this process's rows of global batch `step`."""
    positions = step * self.batch + self.offset + np.arange(self.local)
    epochs, within = np.divmod(positions, self.n)
    return np.array([self._permutation(int(e))[i] for e, i in zip(epochs, within)], np.int64)

  def __iter__(self):
    return self

  def __next__(self) -> dict:
    rows = self.rows(self.step)
    self.step += 1
    return {k: v[rows] for k, v in self.arrays.items()}

  def get_state(self) -> dict:
    return {"step": self.step}

  def set_state(self, state: dict) -> None:
    self.step = int(state["step"])


def padded_batches(arrays: dict, batch_size: int, *, process_index: int = 0, process_count: int = 1) -> list[dict]:
  """Every row once, in order, in batches of `batch_size`; the last batch is padded with
  `weight` 0 rows (labels -100 for token labels), so no example is dropped or counted twice.

  Returns:
    This process's share of each global batch.
  """
  n = len(next(iter(arrays.values())))
  local = batch_size // process_count
  batches = []
  for start in range(0, n, batch_size):
    rows = np.arange(start, start + batch_size)
    real = rows < n
    batch = {k: v[np.minimum(rows, n - 1)].copy() for k, v in arrays.items()}
    if "labels" in batch:
      batch["labels"][~real] = features_lib.IGNORE
    batch["weight"] = real.astype(np.float32)
    batches.append({k: v[process_index * local:(process_index + 1) * local] for k, v in batch.items()})
  return batches


def saved_info(workdir: str) -> dict:
  """WORKDIR/data_info.json of an earlier run on this workdir ({} if none)."""
  path = os.path.join(workdir, "data_info.json")
  if not os.path.isfile(path):
    return {}
  with open(path) as f:
    return json.load(f)


def resolve_tokenizer(config, workdir: str, train_texts) -> Tokenizer:
  """The run's tokenizer (see the module doc); `train_texts()` gives texts to train one on."""
  from jaxpretrain.train import warm_start  # pylint: disable=import-outside-toplevel

  own = os.path.join(workdir, "tokenizer")
  if os.path.isdir(own):
    return Tokenizer.load(own)
  source = warm_start.tokenizer_dir(config) or config.data.tokenizer
  if source:
    return Tokenizer.load(source)
  return Tokenizer.train_wordpiece(train_texts(), config.model.vocab_size)


def read(config, split: str) -> tuple[list[dict], list[str] | None, str]:
  """The records of `split` ("train" or "eval"), the names the source declares, and the spec read.

  With no `data.eval`, evaluation reads the embedded test split, a tfds dataset's validation (or
  test) split, or, for files, the `data.eval_fraction` of training records a hash holds out.
  """
  train_spec, task_name = config.data.train, config.task.name
  spec = train_spec if split == "train" else (config.data.eval or train_spec)
  if spec.startswith("tfds:") and split == "eval" and not config.data.eval:
    spec = "tfds:" + spec[len("tfds:"):].partition(":")[0]  # the dataset's own validation/test split
  embedded_default = EMBEDDED_TRAIN_EXAMPLES if split == "train" else EMBEDDED_EVAL_EXAMPLES
  limit = config.data.train_examples if split == "train" else config.data.eval_examples
  if spec == "embedded":
    limit = limit or embedded_default
  seed = config.train.seed if split == "train" else 0  # one fixed test set for every run
  # A file with no data.eval is split in two by a hash of each record's index.
  hash_split = spec != "embedded" and not spec.startswith("tfds:") and not config.data.eval
  records, declared = read_examples(spec, task_name, split="train" if hash_split else split,
                                    limit=0 if hash_split else limit, seed=seed)
  if hash_split:
    records = [r for i, r in enumerate(records)
               if held_out(i, config.train.seed, config.data.eval_fraction) == (split == "eval")]
    records = records[:limit] if limit else records
  return records, declared, spec


def encode(task_name: str, records: list[dict], tokenizer: Tokenizer, config, names) -> dict:
  """The arrays of `records` for `task_name` (QA: features; see `features.encode_qa`)."""
  seq_len = config.data.seq_len
  if task_name == "classification":
    return features_lib.encode_classification(records, tokenizer, seq_len, names)
  if task_name == "token_classification":
    return features_lib.encode_token_classification(records, tokenizer, seq_len, names)
  arrays, _, _ = features_lib.encode_qa(records, tokenizer, seq_len, config.data.doc_stride)
  arrays["weight"] = np.ones(len(arrays["input_ids"]), np.float32)
  return arrays


def label_vocabulary(config, workdir: str, train_records: list[dict], declared) -> list[str]:
  """The run's label names: saved with the workdir, else inferred from the training records."""
  saved = saved_info(workdir)
  if saved.get("label_names") and saved.get("task") == config.task.name:
    return saved["label_names"]
  if config.task.name == "qa":
    return []
  if config.task.name == "token_classification":
    raw = [t for r in train_records for t in r["tags"]]
  else:
    raw = [r["label"] for r in train_records]
  return features_lib.label_names(raw, num_labels=config.task.num_labels, declared=declared)


def build_labeled(config, workdir: str, *, with_train: bool = True) -> RunData:
  """The `RunData` of a fine-tuning run.

  Args:
    config: the run config (`task.name` one of classification, token_classification, qa).
    workdir: the run's workdir (its tokenizer and data_info.json are reused when present).
    with_train: False reads only the evaluation data (for `evaluate`); label names then come
      from the workdir.

  Returns:
    The `RunData`; `info` holds `task`, `label_names`, `num_labels`, example counts, special ids.
  """
  task_name = config.task.name
  if task_name not in TASKS:
    raise UserError(f"task.name={task_name!r} is not a fine-tuning task ({', '.join(TASKS)})")
  train_records, declared, names = [], None, saved_info(workdir).get("label_names")
  if with_train or names is None:
    train_records, declared, _ = read(config, "train")
  text_of = lambda r: r.get("text_a") or " ".join(r.get("tokens", [])) or r.get("context", "")
  tokenizer = resolve_tokenizer(config, workdir, lambda: [text_of(r) for r in train_records])
  if tokenizer.vocab_size > config.model.vocab_size:
    raise UserError(f"the tokenizer has {tokenizer.vocab_size} tokens but model.vocab_size={config.model.vocab_size}")
  names = label_vocabulary(config, workdir, train_records, declared)
  eval_records, _, eval_spec = read(config, "eval")
  eval_batch = config.eval.batch_size or config.train.batch_size
  kw = dict(process_index=jax.process_index(), process_count=jax.process_count())
  eval_arrays = encode(task_name, eval_records, tokenizer, config, names) if eval_records else None
  eval_list = padded_batches(eval_arrays, eval_batch, **kw) if eval_arrays else []
  train_iter, steps_per_epoch = iter(()), 1
  if with_train:
    train_arrays = encode(task_name, train_records, tokenizer, config, names)
    if task_name == "classification":
      train_arrays["weight"] = np.ones(len(train_arrays["label"]), np.float32)
    train_iter = LabeledBatches(train_arrays, config.train.batch_size, config.train.seed, **kw)
    steps_per_epoch = max(1, math.ceil(len(train_arrays["input_ids"]) / config.train.batch_size))
  info = {"task": task_name, "label_names": list(names), "num_labels": len(names),
          "train": config.data.train, "eval": eval_spec, "train_examples": len(train_records),
          "eval_examples": len(eval_records), "special_ids": tokenizer.special_ids,
          "tokenizer_fingerprint": tokenizer.fingerprint()}
  return RunData(train=train_iter, eval_batches=lambda: eval_list, steps_per_epoch=steps_per_epoch,
                 tokenizer=tokenizer, seq_len=config.data.seq_len, info=info)
