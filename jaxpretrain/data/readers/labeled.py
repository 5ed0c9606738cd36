"""Labeled examples for fine-tuning: the embedded task, local `.jsonl`/`.csv` files, tfds or Hugging Face datasets.

Every reader returns plain records in the shape of one `LabeledKind`:
  CLASSIFICATION:        {"text_a": str, "text_b": str | None, "label": int | str, "where": str}
  REGRESSION:            the same, with "label": float
  TOKEN_CLASSIFICATION:  {"tokens": [str], "tags": [int | str], "where": str}
  QA:                    {"id": str, "question": str, "context": str, "answers": [str],
                          "answer_starts": [int], "where": str}
`where` ("FILE:LINE", "tfds:NAME:SPLIT[i]", "hf:NAME:SPLIT[i]") lets later checks name the offending
example. Field names follow the usual datasets: `text` (or `text_a` + `text_b`, GLUE's
`sentence1`/`sentence2`, `question`/`sentence`, `premise`/`hypothesis`, `question1`/`question2`)
and `label`; `tokens` and `ner_tags`/`tags`; SQuAD's `id`, `question`, `context`, `answers`.
`Columns` (`data.text_column`, `data.text_pair_column`, `data.label_column`) names them instead:
the text (token classification: the words), the second text of a pair, the label (the tags). Which
task reads which kind is the task table's (`tasks/registry.py`) to say; the kinds themselves, with
their encodings, are `finetune/kinds.py`'s.
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import math
import re
from collections.abc import Callable, Iterator

import numpy as np

from jaxpretrain import files, paths
from jaxpretrain.data.readers import hf_datasets as hf_reader
from jaxpretrain.data.readers import tfds as tfds_reader
from jaxpretrain.data.readers.text import JSON_LINES, file_format, jsonl_rows
from jaxpretrain.errors import UserError

SINGLE_FIELDS = ("text", "sentence", "content", "document")
PAIR_FIELDS = (
  ("text_a", "text_b"),
  ("sentence1", "sentence2"),
  ("question", "sentence"),
  ("premise", "hypothesis"),
  ("question1", "question2"),
)
TOKEN_FIELDS = ("tokens", "words")
TAG_FIELDS = ("ner_tags", "tags", "labels", "ner", "label")
_INT = re.compile(r"^-?\d+$")


@dataclasses.dataclass(frozen=True)
class Columns:
  """The columns (fields) a row's parts are read from; "" = the usual names (module doc).

  Attributes:
    text: the text, or the first text of a pair (`data.text_column`); token classification: the words.
    text_pair: the second text of a pair (`data.text_pair_column`); needs `text`.
    label: the label (`data.label_column`); token classification: the tags.
  """

  text: str = ""
  text_pair: str = ""
  label: str = ""

  def __post_init__(self):
    if self.text_pair and not self.text:
      raise UserError(f"data.text_pair_column={self.text_pair!r} needs data.text_column (the pair's first text)")

  @classmethod
  def of(cls, config) -> Columns:
    """The columns the run config's `data.text_column`, `data.text_pair_column`, `data.label_column` name."""
    data = config.data  # a run saved before these keys existed has none of them
    return cls(data.get("text_column", ""), data.get("text_pair_column", ""), data.get("label_column", ""))

  def named(self) -> dict[str, str]:
    """{config key: column} of the columns set."""
    keys = ("data.text_column", "data.text_pair_column", "data.label_column")
    return {k: v for k, v in zip(keys, (self.text, self.text_pair, self.label)) if v}


NO_COLUMNS = Columns()


@dataclasses.dataclass(frozen=True)
class LabeledKind:
  """One kind of labeled example: its record shape (module doc), encoding and labels.

  Attributes:
    to_record: (source row, where, `Columns`) -> the record.
    encode: (records, tokenizer, label names, seq_len=, doc_stride=) -> the arrays (`finetune/features.py`).
    raw_labels: records -> their labels, tags flattened, for the label vocabulary; None: the kind
      has no label vocabulary (QA).
    embedded: the embedded reviews are examples of this kind.
    drop_unlabeled: a tfds or hf split's label -1 marks an unlabeled example (GLUE's test splits).
    label_unit: what its label counts count (data_info.json `label_unit`, for the report).
  """

  to_record: Callable[[dict, str, Columns], dict]
  encode: Callable[..., dict]
  raw_labels: Callable[[list[dict]], list] | None = None
  embedded: bool = False
  drop_unlabeled: bool = False
  label_unit: str = "examples"


def read_examples(
  spec: str, kind: LabeledKind, *, split: str, limit: int = 0, seed: int = 0, columns: Columns = NO_COLUMNS
) -> tuple[list[dict], list[str] | None]:
  """Reads labeled examples.

  Args:
    spec: `embedded` (records of the kind whose `embedded` is set), a `.jsonl`/`.csv`/`.tsv` path,
      `tfds:NAME[/CONFIG][:SPLIT]`, or `hf:NAME[/CONFIG][:SPLIT]` / `hf:DIR[:SPLIT]`.
    kind: the records' `LabeledKind` (`finetune/kinds.py`: CLASSIFICATION, TOKEN_CLASSIFICATION or QA).
    split: "train" or "eval" (picks the embedded split and the default tfds / hf split).
    limit: keep the first `limit` examples (0 = all; the embedded task's size).
    seed: the embedded task's stream.
    columns: the columns to read (`Columns.of(config)`); the default guesses them.

  Returns:
    (records, label names the source declares, e.g. a tfds or hf ClassLabel's, or None).
  """
  if spec == "embedded":
    from jaxpretrain.data.readers.embedded import LABEL_NAMES

    return _embedded(split, limit, seed), list(LABEL_NAMES)
  if spec.startswith("tfds:"):
    return _tfds(spec, kind, split, limit, columns)
  if spec.startswith(hf_reader.PREFIX):
    return _hf(spec, kind, split, limit, columns)
  if not paths.exists(spec):
    raise UserError(f"labeled data file not found: {spec}")
  files.check_file(spec, "labeled data file (data.train/data.eval)")
  if paths.getsize(spec) == 0:
    raise UserError(f"labeled data file is empty: {spec}")
  extension = file_format(
    spec,
    "labeled data file",
    (".csv", ".tsv", *JSON_LINES),
    ".jsonl (one JSON object per line), .csv or .tsv (with a header row), tfds:NAME or hf:NAME",
  )
  rows = _csv_rows(spec) if extension in (".csv", ".tsv") else jsonl_rows(spec, what="labeled data file")
  records = []
  for where, row in rows:
    records.append(kind.to_record(row, where, columns))
    if limit and len(records) == limit:
      break
  if not records:
    raise UserError(f"no examples in {spec}")
  return records, None


def _embedded(split: str, limit: int, seed: int) -> list[dict]:
  from jaxpretrain.data.readers import embedded

  examples = embedded.labeled_examples("train" if split == "train" else "test", limit, seed)
  return [
    {"text_a": e["text"], "text_b": None, "label": e["label"], "where": f"embedded:{split}[{i}]"}
    for i, e in enumerate(examples)
  ]


def _csv_rows(path: str) -> Iterator[tuple[str, dict]]:
  lines = files.open_text(path, "labeled data file")
  reader = csv.DictReader(lines, delimiter="\t" if path.endswith(".tsv") else ",")
  try:
    for row in reader:
      yield f"{path}:{reader.line_num}", row
  except csv.Error as e:
    raise UserError(f"{path}:{reader.line_num}: not valid CSV ({e})") from None


def classification_record(row: dict, where: str, columns: Columns = NO_COLUMNS) -> dict:
  """One source row (dict of fields) as a classification record (see the module doc)."""
  return _texts_record(row, where, columns, lambda: _label(row, where, columns.label))


def regression_record(row: dict, where: str, columns: Columns = NO_COLUMNS) -> dict:
  """One source row as a regression record: a classification record whose label is a float score (STS-B)."""
  return _texts_record(row, where, columns, lambda: _score(row, where, columns.label))


def _texts_record(row: dict, where: str, columns: Columns, label: Callable[[], object]) -> dict:
  """{"text_a", "text_b", "label", "where"} of a row: its text or text pair (`columns`, else the usual fields)."""
  if columns.text:
    text = lambda column, key: _text(_column(row, column, key, where), where, column)
    b = text(columns.text_pair, "data.text_pair_column") if columns.text_pair else None
    return {"text_a": text(columns.text, "data.text_column"), "text_b": b, "label": label(), "where": where}
  for a, b in PAIR_FIELDS:
    if a in row and b in row:
      return {"text_a": _text(row[a], where, a), "text_b": _text(row[b], where, b), "label": label(), "where": where}
  for field in SINGLE_FIELDS:
    if field in row:
      return {"text_a": _text(row[field], where, field), "text_b": None, "label": label(), "where": where}
  raise UserError(f"{where}: no text field (expected 'text', or 'text_a' and 'text_b'; {_fields(row)})")


def token_classification_record(row: dict, where: str, columns: Columns = NO_COLUMNS) -> dict:
  """One source row as a token-classification record: words (`columns.text`) and one tag (`columns.label`) per word."""
  words = _column(row, columns.text, "data.text_column", where) if columns.text else None
  tags = _column(row, columns.label, "data.label_column", where) if columns.label else None
  words = next((row[f] for f in TOKEN_FIELDS if f in row), None) if words is None else words
  tags = next((row[f] for f in TAG_FIELDS if f in row), None) if tags is None else tags
  if words is None or tags is None:
    raise UserError(f"{where}: expected 'tokens' and 'ner_tags' (or 'tags') fields ({_fields(row)})")
  words, tags = [_text(w, where, "tokens") for w in _as_list(words)], [_scalar(t) for t in _as_list(tags)]
  if len(words) != len(tags):
    raise UserError(f"{where}: {len(words)} tokens but {len(tags)} tags")
  return {"tokens": words, "tags": tags, "where": where}


def qa_record(row: dict, where: str, columns: Columns = NO_COLUMNS) -> dict:
  """One source row as a SQuAD-style record: question, context and the gold answers (SQuAD's names; no `columns`)."""
  del columns
  for field in ("question", "context"):
    if field not in row:
      raise UserError(f"{where}: expected 'question', 'context' and 'answers' fields")
  texts, starts = _answers(row.get("answers", {}), where)
  return {
    "id": str(_scalar(row.get("id", where))),
    "question": _text(row["question"], where, "question"),
    "context": _text(row["context"], where, "context"),
    "answers": texts,
    "answer_starts": starts,
    "where": where,
  }


def _answers(answers, where: str) -> tuple[list[str], list[int]]:
  """SQuAD answers as `{"text": [...], "answer_start": [...]}` or a list of such dicts."""
  if isinstance(answers, dict):
    texts, starts = _as_list(answers.get("text", [])), _as_list(answers.get("answer_start", []))
  elif isinstance(answers, list):
    texts = [a.get("text", "") for a in answers]
    starts = [a.get("answer_start", -1) for a in answers]
  else:
    raise UserError(f"{where}: 'answers' must be {{'text': [...], 'answer_start': [...]}}")
  texts = [_text(t, where, "answers") for t in texts]
  return texts, [int(s) for s in starts][: len(texts)]


def _as_list(value) -> list:
  if isinstance(value, np.ndarray):
    return value.tolist()
  if isinstance(value, str):  # a CSV cell holding a JSON list
    try:
      value = json.loads(value)
    except json.JSONDecodeError:
      return value.split()
  return list(value)


def _text(value, where: str, field: str) -> str:
  if isinstance(value, bytes):
    value = value.decode("utf-8")
  if not isinstance(value, str):
    raise UserError(f"{where}: field {field!r} is {type(value).__name__}, not text")
  return value


def _scalar(value):
  """A label as int or str: numpy scalars become ints, integer strings (CSV cells) become ints."""
  if isinstance(value, np.ndarray):
    value = value.item()
  if isinstance(value, bytes):
    value = value.decode("utf-8")
  if isinstance(value, bool) or not isinstance(value, (int, str, np.integer)):
    return value
  if isinstance(value, str):
    return int(value) if _INT.match(value.strip()) else value.strip()
  return int(value)


def _fields(row: dict) -> str:
  """`it has: a, b` (the fields or columns a record has), for messages about a missing one."""
  return f"it has: {', '.join(map(str, row))}" if row else "it has no fields"


def _column(row: dict, column: str, key: str, where: str):
  """The value of a column the config names (`key`); a UserError listing the row's columns when it has none."""
  if column not in row:
    raise UserError(f"{where}: no column {column!r} ({key}; {_fields(row)})")
  return row[column]


def _label_value(row: dict, where: str, column: str = ""):
  """The raw value of a row's label (`column`, else `label`); a UserError when it is missing or empty."""
  if column:
    _column(row, column, "data.label_column", where)
  elif "label" not in row:
    raise UserError(f"{where}: no 'label' field or column ({_fields(row)})")
  column = column or "label"
  if row[column] is None or row[column] == "":
    raise UserError(f"{where}: empty {column!r}")
  return row[column]


def _label(row: dict, where: str, column: str = ""):
  value = _label_value(row, where, column)
  label = _scalar(value)
  if not isinstance(label, (int, str)):
    raise UserError(f"{where}: label {value!r} is neither an integer nor a string")
  return label


def _score(row: dict, where: str, column: str = "") -> float:
  """A regression label as float: a number, or a CSV cell's text of one."""
  value = _label_value(row, where, column)
  value = value.item() if isinstance(value, np.ndarray) else value
  try:
    score = float(value.decode("utf-8") if isinstance(value, bytes) else value)
  except (TypeError, ValueError):
    score = math.nan
  if isinstance(value, bool) or not math.isfinite(score):
    raise UserError(f"{where}: label {value!r} is not a number (task.name=regression reads scores)")
  return score


def _label_fields(columns: Columns) -> tuple[str, ...]:
  """The fields whose ClassLabel names the labels: the label column, else the usual label and tag fields."""
  return (columns.label,) if columns.label else ("label", *TAG_FIELDS)


def _labeled(records: list[dict], kind: LabeledKind, spec: str, split: str) -> list[dict]:
  """A tfds or hf split's records without the unlabeled ones; a UserError when none are left."""
  if kind.drop_unlabeled:  # GLUE's unlabeled test splits mark labels -1
    records = [r for r in records if r["label"] != -1]
  if not records:
    raise UserError(f"no labeled examples in {spec} split {split!r}")
  return records


def _tfds(
  spec: str, kind: LabeledKind, split: str, limit: int, columns: Columns
) -> tuple[list[dict], list[str] | None]:
  source, length, read_split = tfds_reader.open_split(spec, split)
  label_names = tfds_reader.class_label_names(source, _label_fields(columns))
  count = min(length, limit) if limit else length
  records = [
    kind.to_record(dict(row), f"{spec}:{read_split}[{i}]", columns)
    for i, row in enumerate(tfds_reader.records(source, count))
  ]
  return _labeled(records, kind, spec, read_split), label_names


def _hf(spec: str, kind: LabeledKind, split: str, limit: int, columns: Columns) -> tuple[list[dict], list[str] | None]:
  dataset, read_split = hf_reader.open_split(spec, split)
  where = f"{spec} split {read_split!r}"
  hf_reader.check_columns(dataset, where, columns.named())
  label_names = hf_reader.class_label_names(dataset, _label_fields(columns))
  rows = hf_reader.rows(dataset, where)
  base = hf_reader.without_split(spec)
  records = [
    kind.to_record(row, f"{base}:{read_split}[{i}]", columns)
    for i, row in enumerate(itertools.islice(rows, limit) if limit else rows)
  ]
  return _labeled(records, kind, spec, read_split), label_names
