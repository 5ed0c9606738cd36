"""The skeleton of every fine-tuning pipeline: read a source -> limit -> held-out split -> encode -> batches.

Fine-tuning data is small enough to hold in memory. `read_split` picks a split's spec, reads it and
holds out evaluation examples; `resolve_tokenizer` picks the run's tokenizer; `run_data` batches
the encoded arrays (`batches.py`) into the run's `RunData`. `labeled.py` and `translation.py` fill
in what their records are and how they are encoded.

Without `data.eval`, evaluation reads the embedded test split, a tfds or hf dataset's validation
(or test) split (`readers/tfds.py`, `readers/hf_datasets.py`), or, for files, the
`data.eval_fraction` of training records a hash holds out (`common.held_out`).

The tokenizer is, in order: the run's own (WORKDIR/tokenizer, when resuming or evaluating), the
`init_from` run's, `data.tokenizer`, or one trained on the training texts (`data.tokenizer_type`:
WordPiece for encoders, byte-level BPE for decoders).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import numpy as np

from jaxpretrain import files, paths
from jaxpretrain.data.common import RunData, check_vocab_size, held_out
from jaxpretrain.data.finetune import buckets as buckets_lib
from jaxpretrain.data.finetune.batches import LabeledBatches, padded_batches
from jaxpretrain.data.readers import hf_datasets as hf_reader
from jaxpretrain.data.readers import tfds as tfds_reader
from jaxpretrain.data.tokenizer import Tokenizer
from jaxpretrain.errors import warn


def read_split(
  config, split: str, read: Callable[..., tuple[list[dict], object]], *, embedded_sizes: tuple[int, int] = (0, 0)
) -> tuple[list[dict], object, str]:
  """The records of `split` as the config names them (see the module doc).

  Args:
    config: the run config (`data.train`, `data.eval`, `data.*_examples`, `data.eval_fraction`, `train.seed`).
    split: "train" or "eval".
    read: (spec, split, limit=, seed=) -> (records, anything else the source says).
    embedded_sizes: the embedded task's (train, eval) sizes when `data.*_examples` is 0.

  Returns:
    (records, what `read` returned beside them, the spec read).
  """
  train_spec = config.data.train
  spec = train_spec if split == "train" else (config.data.eval or train_spec)
  if split == "eval" and not config.data.eval:  # a dataset's own validation/test split
    if spec.startswith("tfds:"):
      spec = "tfds:" + tfds_reader.parse_spec(spec)[0]
    elif spec.startswith(hf_reader.PREFIX):
      spec = hf_reader.without_split(spec)
  limit = config.data.train_examples if split == "train" else config.data.eval_examples
  if spec == "embedded":
    limit = limit or embedded_sizes[split != "train"]
  seed = config.train.seed if split == "train" else 0  # one fixed test set for every run
  user_file = spec != "embedded" and not spec.startswith(("tfds:", hf_reader.PREFIX))
  hash_split = user_file and not config.data.eval
  records, extra = read(spec, "train" if hash_split else split, limit=0 if user_file else limit, seed=seed)
  if hash_split:
    records = [
      r for i, r in enumerate(records) if held_out(i, config.train.seed, config.data.eval_fraction) == (split == "eval")
    ]
  if user_file and limit and len(records) > limit:  # a recipe's budget silently dropping a user's rows
    warn(
      f"data.{split}_examples={limit} keeps the first {limit} of the {len(records)} {split} examples of {spec} "
      f"(set data.{split}_examples=0 to use all)"
    )
    records = records[:limit]
  return records, extra, spec


def saved_info(workdir: str) -> dict:
  """WORKDIR/data_info.json of an earlier run on this workdir ({} if none)."""
  path = paths.join(workdir, "data_info.json")
  if not paths.isfile(path):
    return {}
  return files.read_json(path, "run file")


def resolve_tokenizer(
  config,
  workdir: str,
  train_texts: Callable[[], list[str]],
  init_tokenizer_dir: Callable[..., str],
  tokenizer_type: str = "wordpiece",
) -> Tokenizer:
  """The run's tokenizer (see the module doc), checked against `model.vocab_size`.

  Args:
    config: the run config.
    workdir: the run's workdir.
    train_texts: () -> texts to train a tokenizer on.
    init_tokenizer_dir: config -> the tokenizer directory of `init_from` ("" without one), e.g.
      `checkpoint.init_from.tokenizer_dir`; called only when the workdir has no tokenizer.
    tokenizer_type: the kind trained when there is nothing to load (the task table's `registry.tokenizer_type`).

  Returns:
    The `Tokenizer`.
  """
  own = paths.join(workdir, "tokenizer")
  if paths.isdir(own):
    tokenizer = Tokenizer.load(own)
  elif source := init_tokenizer_dir(config) or config.data.tokenizer:
    tokenizer = Tokenizer.load(source)
  else:
    tokenizer = Tokenizer.train(tokenizer_type, train_texts(), config.model.vocab_size)
  check_vocab_size(tokenizer, config.model.vocab_size)
  return tokenizer


def run_data(config, tokenizer: Tokenizer, train_arrays: dict | None, eval_arrays: dict | None, info: dict) -> RunData:
  """The `RunData` of encoded arrays: training batches reshuffled every epoch, evaluation batches padded.

  Both are cut to length buckets (`data.length_buckets`, `buckets.py`), training rows grouped by
  length (`data.length_grouping`); the lengths in use are noted once on stderr and kept in
  `info["length_buckets"]`.

  Args:
    config: the run config (`train.batch_size`, `train.seed`, `eval.batch_size`, `data.seq_len`,
      `data.length_buckets`, `data.length_grouping`, `mesh.*`).
    tokenizer: the run's tokenizer.
    train_arrays: the training rows (None: no training data, e.g. for `evaluate`).
    eval_arrays: the evaluation rows (None: none).
    info: the `RunData.info`; the tokenizer's special ids and fingerprint are added.

  Returns:
    The `RunData`.
  """
  kw = dict(
    process_index=jax.process_index(),
    process_count=jax.process_count(),
    buckets=config.data.length_buckets,
    multiple=buckets_lib.length_multiple(config.mesh, jax.device_count()),
  )
  eval_batch = config.eval.batch_size or config.train.batch_size
  eval_list = padded_batches(eval_arrays, eval_batch, **kw) if eval_arrays else []
  train_iter, steps_per_epoch, lengths = iter(()), 1, {}
  if train_arrays is not None:
    train_iter = LabeledBatches(
      train_arrays, config.train.batch_size, config.train.seed, grouping=config.data.length_grouping, **kw
    )
    steps_per_epoch = max(1, math.ceil(len(train_arrays["input_ids"]) / config.train.batch_size))
    lengths["train"] = train_iter.bucket_lengths
  if eval_list:
    lengths["eval"] = tuple(sorted({int(np.shape(b["input_ids"])[1]) for b in eval_list}))
  buckets_lib.note(lengths, config.data.seq_len)
  info = dict(info, special_ids=tokenizer.special_ids, tokenizer_fingerprint=tokenizer.fingerprint())
  if config.data.length_buckets:
    info["length_buckets"] = {split: list(v) for split, v in lengths.items()}
  return RunData(
    train=train_iter,
    eval_batches=lambda: eval_list,
    steps_per_epoch=steps_per_epoch,
    tokenizer=tokenizer,
    seq_len=config.data.seq_len,
    info=info,
  )
