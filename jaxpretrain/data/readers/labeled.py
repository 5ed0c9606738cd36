"""Labeled examples for fine-tuning: the embedded task, local `.jsonl`/`.csv` files, or tfds.

Every reader returns plain records in the shape of one `LabeledKind`:
  CLASSIFICATION:        {"text_a": str, "text_b": str | None, "label": int | str, "where": str}
  TOKEN_CLASSIFICATION:  {"tokens": [str], "tags": [int | str], "where": str}
  QA:                    {"id": str, "question": str, "context": str, "answers": [str],
                          "answer_starts": [int], "where": str}
`where` ("FILE:LINE", "tfds:NAME:SPLIT[i]") lets later checks name the offending example. Field
names follow the usual datasets: `text` (or `text_a` + `text_b`, GLUE's `sentence1`/`sentence2`,
`question`/`sentence`, `premise`/`hypothesis`) and `label`; `tokens` and `ner_tags`/`tags`;
SQuAD's `id`, `question`, `context`, `answers`. Which task reads which kind is the task table's
(`tasks/registry.py`) to say; the kinds themselves, with their encodings, are `finetune/kinds.py`'s.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
from collections.abc import Callable, Iterator

import numpy as np

from jaxpretrain import files
from jaxpretrain.data.readers import tfds as tfds_reader
from jaxpretrain.data.readers.text import JSON_LINES, jsonl_rows
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
class LabeledKind:
  """One kind of labeled example: its record shape (module doc), encoding and labels.

  Attributes:
    to_record: (source row, where) -> the record.
    encode: (records, tokenizer, label names, seq_len=, doc_stride=) -> the arrays (`finetune/features.py`).
    raw_labels: records -> their labels, tags flattened, for the label vocabulary; None: the kind
      has no label vocabulary (QA).
    embedded: the embedded reviews are examples of this kind.
    drop_unlabeled: a tfds split's label -1 marks an unlabeled example (GLUE's test splits).
  """

  to_record: Callable[[dict, str], dict]
  encode: Callable[..., dict]
  raw_labels: Callable[[list[dict]], list] | None = None
  embedded: bool = False
  drop_unlabeled: bool = False


def read_examples(
  spec: str, kind: LabeledKind, *, split: str, limit: int = 0, seed: int = 0
) -> tuple[list[dict], list[str] | None]:
  """Reads labeled examples.

  Args:
    spec: `embedded` (records of the kind whose `embedded` is set), a `.jsonl`/`.csv` path, or
      `tfds:NAME[/CONFIG][:SPLIT]`.
    kind: the records' `LabeledKind` (`finetune/kinds.py`: CLASSIFICATION, TOKEN_CLASSIFICATION or QA).
    split: "train" or "eval" (picks the embedded split and the default tfds split).
    limit: keep the first `limit` examples (0 = all; the embedded task's size).
    seed: the embedded task's stream.

  Returns:
    (records, label names the source declares, e.g. a tfds ClassLabel's, or None).
  """
  if spec == "embedded":
    from jaxpretrain.data.readers.embedded import LABEL_NAMES

    return _embedded(split, limit, seed), list(LABEL_NAMES)
  if spec.startswith("tfds:"):
    return _tfds(spec, kind, split, limit)
  if not os.path.exists(spec):
    raise UserError(f"labeled data file not found: {spec}")
  files.check_file(spec, "labeled data file (data.train/data.eval)")
  if os.path.getsize(spec) == 0:
    raise UserError(f"labeled data file is empty: {spec}")
  extension = os.path.splitext(spec)[1].lower()
  if extension not in (".csv", ".tsv", *JSON_LINES):
    raise UserError(
      f"labeled data file {spec}: {'a ' + extension if extension else 'a file without an extension'} is not a format "
      "jaxpretrain reads; use .jsonl (one JSON object per line), .csv or .tsv (with a header row), or tfds:NAME"
    )
  rows = _csv_rows(spec) if extension in (".csv", ".tsv") else jsonl_rows(spec, what="labeled data file")
  records = []
  for where, row in rows:
    records.append(kind.to_record(row, where))
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


def classification_record(row: dict, where: str) -> dict:
  """One source row (dict of fields) as a classification record (see the module doc)."""
  for a, b in PAIR_FIELDS:
    if a in row and b in row:
      return {
        "text_a": _text(row[a], where, a),
        "text_b": _text(row[b], where, b),
        "label": _label(row, where),
        "where": where,
      }
  for field in SINGLE_FIELDS:
    if field in row:
      return {"text_a": _text(row[field], where, field), "text_b": None, "label": _label(row, where), "where": where}
  raise UserError(f"{where}: no text field (expected 'text', or 'text_a' and 'text_b'; {_fields(row)})")


def token_classification_record(row: dict, where: str) -> dict:
  """One source row as a token-classification record: words and one tag per word."""
  words = next((row[f] for f in TOKEN_FIELDS if f in row), None)
  tags = next((row[f] for f in TAG_FIELDS if f in row), None)
  if words is None or tags is None:
    raise UserError(f"{where}: expected 'tokens' and 'ner_tags' (or 'tags') fields")
  words, tags = [_text(w, where, "tokens") for w in _as_list(words)], [_scalar(t) for t in _as_list(tags)]
  if len(words) != len(tags):
    raise UserError(f"{where}: {len(words)} tokens but {len(tags)} tags")
  return {"tokens": words, "tags": tags, "where": where}


def qa_record(row: dict, where: str) -> dict:
  """One source row as a SQuAD-style record: question, context and the gold answers."""
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


def _label(row: dict, where: str):
  if "label" not in row:
    raise UserError(f"{where}: no 'label' field or column ({_fields(row)})")
  if row["label"] is None or row["label"] == "":
    raise UserError(f"{where}: empty 'label'")
  label = _scalar(row["label"])
  if not isinstance(label, (int, str)):
    raise UserError(f"{where}: label {row['label']!r} is neither an integer nor a string")
  return label


def _tfds(spec: str, kind: LabeledKind, split: str, limit: int) -> tuple[list[dict], list[str] | None]:
  source, length, read_split = tfds_reader.open_split(spec, split)
  label_names = tfds_reader.class_label_names(source, ("label", *TAG_FIELDS))
  count = min(length, limit) if limit else length
  records = [
    kind.to_record(dict(row), f"{spec}:{read_split}[{i}]") for i, row in enumerate(tfds_reader.records(source, count))
  ]
  if kind.drop_unlabeled:  # GLUE's unlabeled test splits mark labels -1
    records = [r for r in records if r["label"] != -1]
  if not records:
    raise UserError(f"no labeled examples in {spec} split {read_split!r}")
  return records, label_names
