"""Labeled examples for fine-tuning: the embedded task, local `.jsonl`/`.csv` files, or tfds.

Every reader returns plain records in one shape per task:
  classification:        {"text_a": str, "text_b": str | None, "label": int | str, "where": str}
  token_classification:  {"tokens": [str], "tags": [int | str], "where": str}
  qa:                    {"id": str, "question": str, "context": str, "answers": [str],
                          "answer_starts": [int], "where": str}
`where` ("FILE:LINE", "tfds:NAME:SPLIT[i]") lets later checks name the offending example. Field
names follow the usual datasets: `text` (or `text_a` + `text_b`, GLUE's `sentence1`/`sentence2`,
`question`/`sentence`, `premise`/`hypothesis`) and `label`; `tokens` and `ner_tags`/`tags`;
SQuAD's `id`, `question`, `context`, `answers`.
"""
from __future__ import annotations

import csv
import json
import os
import re
from typing import Iterator

import numpy as np

from jaxpretrain.data.sources import jsonl_rows, parse_tfds_spec, tfds_builder
from jaxpretrain.errors import UserError

SINGLE_FIELDS = ("text", "sentence", "content", "document")
PAIR_FIELDS = (("text_a", "text_b"), ("sentence1", "sentence2"), ("question", "sentence"),
               ("premise", "hypothesis"), ("question1", "question2"))
TOKEN_FIELDS = ("tokens", "words")
TAG_FIELDS = ("ner_tags", "tags", "labels", "ner", "label")
EVAL_SPLITS = ("validation", "validation_matched", "test", "dev")
_INT = re.compile(r"^-?\d+$")


def read_examples(spec: str, task_name: str, *, split: str, limit: int = 0, seed: int = 0) -> tuple[list[dict], list[str] | None]:
  """Reads labeled examples.

  Args:
    spec: `embedded`, a `.jsonl`/`.csv` path, or `tfds:NAME[/CONFIG][:SPLIT]`.
    task_name: classification | token_classification | qa.
    split: "train" or "eval" (picks the embedded split and the default tfds split).
    limit: keep the first `limit` examples (0 = all; the embedded task's size).
    seed: the embedded task's stream.

  Returns:
    (records, label names the source declares, e.g. a tfds ClassLabel's, or None).
  """
  if spec == "embedded":
    from jaxpretrain.data.embedded import LABEL_NAMES  # pylint: disable=import-outside-toplevel
    return _embedded(task_name, split, limit, seed), list(LABEL_NAMES)
  if spec.startswith("tfds:"):
    return _tfds(spec, task_name, split, limit)
  if not os.path.isfile(spec):
    raise UserError(f"labeled data file not found: {spec}")
  if os.path.getsize(spec) == 0:
    raise UserError(f"labeled data file is empty: {spec}")
  rows = _csv_rows(spec) if spec.endswith((".csv", ".tsv")) else jsonl_rows(spec)
  records = []
  for where, row in rows:
    records.append(to_record(row, task_name, where))
    if limit and len(records) == limit:
      break
  if not records:
    raise UserError(f"no examples in {spec}")
  return records, None


def _embedded(task_name: str, split: str, limit: int, seed: int) -> list[dict]:
  from jaxpretrain.data import embedded  # pylint: disable=import-outside-toplevel

  if task_name != "classification":
    raise UserError(f"the embedded labeled data is a classification task, not task.name={task_name}")
  examples = embedded.labeled_examples("train" if split == "train" else "test", limit, seed)
  return [{"text_a": e["text"], "text_b": None, "label": e["label"], "where": f"embedded:{split}[{i}]"}
          for i, e in enumerate(examples)]


def _csv_rows(path: str) -> Iterator[tuple[str, dict]]:
  with open(path, encoding="utf-8", newline="") as f:
    reader = csv.DictReader(f, delimiter="\t" if path.endswith(".tsv") else ",")
    for row in reader:
      yield f"{path}:{reader.line_num}", row


def to_record(row: dict, task_name: str, where: str) -> dict:
  """One source row (dict of fields) as the task's record (see the module doc)."""
  if task_name == "classification":
    for a, b in PAIR_FIELDS:
      if a in row and b in row:
        return {"text_a": _text(row[a], where, a), "text_b": _text(row[b], where, b),
                "label": _label(row, where), "where": where}
    for field in SINGLE_FIELDS:
      if field in row:
        return {"text_a": _text(row[field], where, field), "text_b": None, "label": _label(row, where),
                "where": where}
    raise UserError(f"{where}: no text field (expected 'text', or 'text_a' and 'text_b')")
  if task_name == "token_classification":
    words = next((row[f] for f in TOKEN_FIELDS if f in row), None)
    tags = next((row[f] for f in TAG_FIELDS if f in row), None)
    if words is None or tags is None:
      raise UserError(f"{where}: expected 'tokens' and 'ner_tags' (or 'tags') fields")
    words, tags = [_text(w, where, "tokens") for w in _as_list(words)], [_scalar(t) for t in _as_list(tags)]
    if len(words) != len(tags):
      raise UserError(f"{where}: {len(words)} tokens but {len(tags)} tags")
    return {"tokens": words, "tags": tags, "where": where}
  if task_name == "qa":
    for field in ("question", "context"):
      if field not in row:
        raise UserError(f"{where}: expected 'question', 'context' and 'answers' fields")
    texts, starts = _answers(row.get("answers", {}), where)
    return {"id": str(_scalar(row.get("id", where))), "question": _text(row["question"], where, "question"),
            "context": _text(row["context"], where, "context"), "answers": texts, "answer_starts": starts,
            "where": where}
  raise UserError(f"task.name={task_name!r} has no labeled data reader")


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
  return texts, [int(s) for s in starts][:len(texts)]


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


def _label(row: dict, where: str):
  if "label" not in row or row["label"] is None or row["label"] == "":
    raise UserError(f"{where}: no 'label'")
  label = _scalar(row["label"])
  if not isinstance(label, (int, str)):
    raise UserError(f"{where}: label {row['label']!r} is neither an integer nor a string")
  return label


def _tfds(spec: str, task_name: str, split: str, limit: int) -> tuple[list[dict], list[str] | None]:
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel  (slow; optional)

  name, given_split = parse_tfds_spec(spec)
  explicit = ":" in spec[len("tfds:"):]
  builder = tfds_builder(spec)
  if explicit or split == "train":
    candidates = [given_split]
  else:  # a prepared dataset lists its splits; an unprepared one is asked for each in turn
    known = list(builder.info.splits.keys())
    candidates = [s for s in EVAL_SPLITS if s in known] if known else list(EVAL_SPLITS)
    if not candidates:
      raise UserError(f"{spec} has no validation or test split (it has {', '.join(known)}); set data.eval")
  for i, given_split in enumerate(candidates):
    try:
      source = tfds.data_source(name, split=given_split)
      length = len(source)
      break
    except Exception as e:  # pylint: disable=broad-except  (download, preparation, split problems)
      if i == len(candidates) - 1:
        raise UserError(f"cannot read {spec} split {given_split!r}: "
                        f"{str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}") from None
  features = source.dataset_info.features
  label_names = None
  for field in ("label", *TAG_FIELDS):
    feature = features[field] if field in features else None
    feature = getattr(feature, "feature", feature)  # a Sequence(ClassLabel) of tags
    if isinstance(feature, tfds.features.ClassLabel):
      label_names = list(feature.names)
      break
  count = min(length, limit) if limit else length
  records = [to_record(dict(source[i]), task_name, f"{spec}:{given_split}[{i}]") for i in range(count)]
  if task_name == "classification":  # GLUE's unlabeled test splits mark labels -1
    records = [r for r in records if r["label"] != -1]
  if not records:
    raise UserError(f"no labeled examples in {spec} split {given_split!r}")
  return records, label_names

