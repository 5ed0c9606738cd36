"""Translation pairs: `read_pairs(spec, split)` -> `[{"source": str, "target": str, "where": str}]`.

Sources:
  * `embedded`: the embedded translation task (`embedded_translation.py`), no download;
  * a `.jsonl` file, one pair per line: `{"source": ..., "target": ...}` (other field names via
    `data.source_field` / `data.target_field`, or HF-style `{"translation": {"de": .., "en": ..}}`
    with the language codes as field names);
  * `tfds:NAME[/CONFIG][:SPLIT]`, a tfds translation dataset (e.g. `tfds:ted_hrlr_translate/pt_to_en`,
    or `tfds:wmt14_translate/de-en` where TensorFlow is installed; splits as `tfds.py` picks them);
    source and target default to the dataset's supervised keys;
  * `hf:NAME[/CONFIG][:SPLIT]` or `hf:DIR[:SPLIT]`, a Hugging Face dataset (`hf_datasets.py`), e.g.
    `hf:wmt14/de-en`: rows `{"translation": {"de": .., "en": ..}}` read source and target in the
    order of the `translation` feature's languages unless `data.source_field` / `data.target_field`
    say otherwise; other datasets default to `source` and `target` columns.
"""

from __future__ import annotations

import itertools

from jaxpretrain import files, paths
from jaxpretrain.data.readers import hf_datasets as hf_reader
from jaxpretrain.data.readers import tfds as tfds_reader
from jaxpretrain.data.readers.text import JSON_LINES, file_format, jsonl_rows
from jaxpretrain.errors import UserError

EMBEDDED_TRAIN_PAIRS = 2000  # the embedded task's sizes when data.*_examples is 0
EMBEDDED_EVAL_PAIRS = 500


def read_pairs(
  spec: str, split: str, *, limit: int = 0, seed: int = 0, source_field: str = "", target_field: str = ""
) -> list[dict]:
  """Reads translation pairs.

  Args:
    spec: `embedded`, a `.jsonl` path, `tfds:NAME[/CONFIG][:SPLIT]` or `hf:NAME[/CONFIG][:SPLIT]` / `hf:DIR[:SPLIT]`.
    split: "train" or "eval" (the embedded split; a tfds or hf dataset's default split).
    limit: keep the first `limit` pairs (0 = all; the embedded task's default size).
    seed: the embedded task's stream.
    source_field, target_field: the fields holding the texts ("" = see the module doc).

  Returns:
    `[{"source": str, "target": str, "where": str}]`.
  """
  if spec == "embedded":
    from jaxpretrain.data.readers import embedded_translation

    limit = limit or (EMBEDDED_TRAIN_PAIRS if split == "train" else EMBEDDED_EVAL_PAIRS)
    return [
      dict(p, where=f"embedded:{split}[{i}]")
      for i, p in enumerate(embedded_translation.pairs("train" if split == "train" else "test", limit, seed))
    ]
  if spec.startswith("tfds:"):
    return _tfds_pairs(spec, split, limit, source_field, target_field)
  if spec.startswith(hf_reader.PREFIX):
    return _hf_pairs(spec, split, limit, source_field, target_field)
  if not paths.exists(spec):
    raise UserError(f"translation data file not found: {spec}")
  files.check_file(spec, "translation data file (data.train/data.eval)")
  file_format(
    spec,
    "translation data file",
    JSON_LINES,
    ".jsonl (one JSON object per line with 'source' and 'target'), tfds:NAME or hf:NAME",
  )
  out = []
  for where, row in jsonl_rows(spec, what="translation data file"):
    out.append(_pair(row, where, source_field, target_field))
    if limit and len(out) == limit:
      break
  if not out:
    raise UserError(f"no translation pairs in {spec}")
  return out


def _pair(row, where: str, source_field: str, target_field: str) -> dict:
  """One record as a pair; a `UserError` naming `where` when the fields are missing or not text."""
  if not isinstance(row, dict):
    raise UserError(f"{where}: expected a JSON object with 'source' and 'target'")
  if isinstance(row.get("translation"), dict):  # HF datasets' translation rows
    row = row["translation"]
  source_field, target_field = source_field or "source", target_field or "target"
  texts = []
  for field in (source_field, target_field):
    if field not in row:
      raise UserError(
        f"{where}: no {field!r} field (set data.source_field / data.target_field; it has "
        f"{', '.join(map(str, row)) or 'no fields'})"
      )
    value = row[field]
    if isinstance(value, bytes):
      value = value.decode("utf-8")
    if not isinstance(value, str):
      raise UserError(f"{where}: field {field!r} is {type(value).__name__}, not text")
    texts.append(value)
  return {"source": texts[0], "target": texts[1], "where": where}


def _tfds_pairs(spec: str, split: str, limit: int, source_field: str, target_field: str) -> list[dict]:
  keys = tfds_reader.builder(spec).info.supervised_keys or ("", "")
  source_field, target_field = source_field or keys[0], target_field or keys[1]
  if not source_field or not target_field:
    raise UserError(f"{spec} has no supervised keys: set data.source_field and data.target_field")
  source, length, read_split = tfds_reader.open_split(spec, split)
  count = min(length, limit) if limit else length
  out = [
    _pair(dict(row), f"{spec}:{read_split}[{i}]", source_field, target_field)
    for i, row in enumerate(tfds_reader.records(source, count))
  ]
  if not out:
    raise UserError(f"no translation pairs in {spec} split {read_split!r}")
  return out


def _hf_pairs(spec: str, split: str, limit: int, source_field: str, target_field: str) -> list[dict]:
  dataset, read_split = hf_reader.open_split(spec, split)
  languages = hf_reader.translation_languages(dataset)
  if languages and not source_field and not target_field:
    source_field, target_field = languages
  rows = hf_reader.rows(dataset, f"{spec} split {read_split!r}")
  base = hf_reader.without_split(spec)
  out = [
    _pair(row, f"{base}:{read_split}[{i}]", source_field, target_field)
    for i, row in enumerate(itertools.islice(rows, limit) if limit else rows)
  ]
  if not out:
    raise UserError(f"no translation pairs in {spec} split {read_split!r}")
  return out
