"""`build_labeled`: the `RunData` of a fine-tuning run (classification, token classification, QA).

The `base.py` skeleton filled in for labeled records: they are read by `readers/labeled.py` and
encoded by their `LabeledKind` (`kinds.py`, `features.py`). The label vocabulary is saved in
`data_info.json` (`label_names`) and reused by later runs on the same workdir, so label ids never
change under a resumed or evaluated model.
"""

from __future__ import annotations

from collections.abc import Callable

from jaxpretrain.data.common import RunData
from jaxpretrain.data.finetune import features as features_lib
from jaxpretrain.data.finetune.base import read_split, resolve_tokenizer, run_data, saved_info
from jaxpretrain.data.readers.labeled import Columns, LabeledKind, read_examples
from jaxpretrain.data.tokenizer import Tokenizer
from jaxpretrain.errors import UserError

EMBEDDED_TRAIN_EXAMPLES = 1000  # the embedded task's defaults when data.*_examples is 0
EMBEDDED_EVAL_EXAMPLES = 2000


def read(config, split: str, kind: LabeledKind) -> tuple[list[dict], list[str] | None, str]:
  """The `kind` records of `split` ("train" or "eval"), the names the source declares, and the spec read.

  Splits, limits and held-out records follow `base.read_split`.
  """

  def read_source(spec: str, source_split: str, *, limit: int, seed: int):
    if spec == "embedded" and not kind.embedded:
      raise UserError(f"the embedded labeled data is a classification task, not task.name={config.task.name}")
    return read_examples(spec, kind, split=source_split, limit=limit, seed=seed, columns=Columns.of(config))

  return read_split(config, split, read_source, embedded_sizes=(EMBEDDED_TRAIN_EXAMPLES, EMBEDDED_EVAL_EXAMPLES))


def encode(kind: LabeledKind, records: list[dict], tokenizer: Tokenizer, config, names) -> dict:
  """The arrays of `kind` records (QA: features; see `features.encode_qa`)."""
  return kind.encode(records, tokenizer, names, seq_len=config.data.seq_len, doc_stride=config.data.doc_stride)


def label_vocabulary(config, workdir: str, kind: LabeledKind, train_records: list[dict], declared) -> list[str]:
  """The run's label names: saved with the workdir, else inferred from the training records."""
  saved = saved_info(workdir)
  if saved.get("label_names") and saved.get("task") == config.task.name:
    return saved["label_names"]
  if kind.raw_labels is None:
    return []
  where = [r["where"] for r in train_records for _ in kind.raw_labels([r])]
  return features_lib.label_names(
    kind.raw_labels(train_records), num_labels=config.task.num_labels, declared=declared, where=where
  )


def build_labeled(
  config,
  workdir: str,
  kind: LabeledKind,
  *,
  init_tokenizer_dir: Callable[..., str],
  with_train: bool = True,
  tokenizer_type: str = "wordpiece",
) -> RunData:
  """The `RunData` of a fine-tuning run (the task table's `build_data` calls it).

  Args:
    config: the run config.
    workdir: the run's workdir (its tokenizer and data_info.json are reused when present).
    kind: the run's `LabeledKind` (classification, token classification or QA records).
    init_tokenizer_dir: config -> the tokenizer directory of `init_from` (see `resolve_tokenizer`).
    with_train: False reads only the evaluation data (for `evaluate`); label names then come
      from the workdir.
    tokenizer_type: the tokenizer trained when there is none to load (see `resolve_tokenizer`).

  Returns:
    The `RunData`; `info` holds `task`, `label_names`, `num_labels`, example counts, special ids
    and, for labeled tasks, `label_counts` ({"train", "eval"} -> {label name: count}; no "train"
    with with_train=False).
  """
  train_records, declared, names = [], None, saved_info(workdir).get("label_names")
  if with_train or names is None:
    train_records, declared, _ = read(config, "train", kind)
  text_of = lambda r: r.get("text_a") or " ".join(r.get("tokens", [])) or r.get("context", "")
  tokenizer = resolve_tokenizer(
    config, workdir, lambda: [text_of(r) for r in train_records], init_tokenizer_dir, tokenizer_type
  )
  names = label_vocabulary(config, workdir, kind, train_records, declared)
  eval_records, _, eval_spec = read(config, "eval", kind)
  eval_arrays = encode(kind, eval_records, tokenizer, config, names) if eval_records else None
  train_arrays = encode(kind, train_records, tokenizer, config, names) if with_train else None
  info = {
    "task": config.task.name,
    "label_names": list(names),
    "num_labels": len(names),
    "train": config.data.train,
    "eval": eval_spec,
    "train_examples": len(train_records),
    "eval_examples": len(eval_records),
  }
  counts = {
    split: features_lib.label_counts(arrays, names)
    for split, arrays in (("train", train_arrays), ("eval", eval_arrays))
    if split == "eval" or with_train
  }
  if all(c is not None for c in counts.values()):
    info["label_counts"] = counts  # per split, in label order: the report's label table and majority baseline
    info["label_unit"] = kind.label_unit
  return run_data(config, tokenizer, train_arrays, eval_arrays, info)
