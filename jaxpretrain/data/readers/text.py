"""Text sources: `iter_documents(spec)` streams pretraining documents; `jsonl_rows` reads .jsonl rows.

Specs:
  * `embedded`: the synthetic corpus of `readers/embedded.py` (no download).
  * a file, a directory (its `.txt`/`.jsonl` files) or a glob: `.jsonl` files hold one JSON
    object per line with a `text` field (or the `text_column` field); other files are UTF-8 text
    with one document per line, or, when blank lines separate paragraphs, one document per paragraph.
  * `tfds:NAME[/CONFIG][:SPLIT]` (SPLIT defaults to `train`, slicing such as `train[:10%]`
    works): a TensorFlow Datasets dataset (`readers/tfds.py`); the text is the `text_column`
    feature, else the `text`, `content`, `document`, `article` or `sentence` feature, or the only
    text feature.
  * `hf:NAME[/CONFIG][:SPLIT]` or `hf:DIR[:SPLIT]` (SPLIT defaults to `train`): a Hugging Face
    dataset, streamed (`readers/hf_datasets.py`); the text column is picked as for tfds.

Files are read line by line and datasets row by row, so a corpus never has to fit in memory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

from jaxpretrain import files
from jaxpretrain import paths as file_paths  # `paths` names lists of files here
from jaxpretrain.data.readers import hf_datasets as hf_reader
from jaxpretrain.data.readers import tfds as tfds_reader
from jaxpretrain.errors import UserError


def iter_documents(
  spec: str, *, embedded_documents: int = 40000, seed: int = 0, text_column: str = ""
) -> Iterator[str]:
  """Streams the documents of a corpus spec, in the same order every time; empty documents are skipped.

  Args:
    spec: `embedded`, a path, a glob, `tfds:NAME[/CONFIG][:SPLIT]` or `hf:NAME[/CONFIG][:SPLIT]` /
      `hf:DIR[:SPLIT]` (see the module doc).
    embedded_documents: how many documents the `embedded` corpus has.
    seed: the `embedded` corpus's stream.
    text_column: the field of .jsonl rows, tfds features or hf columns holding the text
      (`data.text_column`; "" = see the module doc).

  Returns:
    An iterator over documents. Path, tfds and hf errors are raised at the call, not on first read.
  """
  spec = (spec or "").strip()
  if not spec:
    raise UserError("no data source given (use 'embedded', a file path, a glob, tfds:NAME or hf:NAME)")
  if spec == "embedded":
    from jaxpretrain.data.readers import embedded

    return embedded.documents(embedded_documents, seed)
  if spec.startswith("tfds:"):
    return _iter_tfds(spec, text_column)
  if spec.startswith(hf_reader.PREFIX):
    return _iter_hf(spec, text_column)
  paths = resolve_files(spec)
  for path in paths:  # fail before any work on a corpus with a bad file name in it
    if file_paths.getsize(path) == 0:
      raise UserError(f"data file is empty: {path}")
  return _iter_files(paths, text_column or "text")


def resolve_files(spec: str) -> list[str]:
  """The sorted files a path, directory or glob names; `UserError` if there are none.

  Args:
    spec: a file, a directory (its .txt/.jsonl files) or a glob pattern.

  Returns:
    Sorted file paths.
  """
  if any(c in spec for c in "*?["):
    paths = [p for p in file_paths.glob_pattern(spec) if file_paths.isfile(p)]
    if not paths:
      raise UserError(f"no files match {spec}")
    return paths
  if file_paths.isdir(spec):  # local, or a gs:// prefix
    paths = sorted(
      file_paths.join(spec, name)
      for name in file_paths.listdir(spec)
      if name.endswith((".txt", ".jsonl")) and not name.startswith(".")
    )
    if not paths:
      raise UserError(f"directory {spec} has no .txt or .jsonl files")
    return paths
  if not file_paths.exists(spec):
    raise UserError(f"data file not found: {spec}")
  return [spec]


def _iter_files(paths: list[str], field: str) -> Iterator[str]:
  count = 0
  for path in paths:
    jsonl = path.endswith((".jsonl", ".ndjson"))
    for document in _iter_jsonl(path, field) if jsonl else _iter_text(path):
      count += 1
      yield document
  if count == 0:
    raise UserError(f"no text in {paths[0] if len(paths) == 1 else f'{len(paths)} files'}")


def _lines(path: str, what: str = "data file") -> Iterator[tuple[int, str]]:
  """(1-based line number, decoded line without newline); see `files.iter_lines` for the errors."""
  return files.iter_lines(path, what)


def _has_paragraphs(path: str) -> bool:
  """Whether a blank line separates two non-blank lines (a trailing blank line does not count)."""
  seen_text = pending_blank = False
  for _, line in _lines(path):
    if not line.strip():
      pending_blank = seen_text
    elif pending_blank:
      return True
    else:
      seen_text = True
  return False


def _iter_text(path: str) -> Iterator[str]:
  if not _has_paragraphs(path):
    for _, line in _lines(path):
      if line.strip():
        yield line.strip()
    return
  paragraph = []
  for _, line in _lines(path):
    if line.strip():
      paragraph.append(line.strip())
    elif paragraph:
      yield "\n".join(paragraph)
      paragraph = []
  if paragraph:
    yield "\n".join(paragraph)


JSON_LINES = (".jsonl", ".json", ".ndjson")  # file extensions read as one JSON object per line


def file_format(path: str, what: str, accepted: tuple[str, ...], use: str) -> str:
  """The lower-cased extension of `path`, which must be one of `accepted`.

  Args:
    path: a data file the user named.
    what: what it is, for the message (e.g. "labeled data file").
    accepted: the extensions this reader reads.
    use: the formats to suggest, in words.

  Raises:
    UserError: naming the file, its extension and `use`.
  """
  extension = os.path.splitext(path)[1].lower()
  if extension not in accepted:
    kind = f"a {extension}" if extension else "a file without an extension"
    raise UserError(f"{what} {path}: {kind} is not a format jaxpretrain reads; use {use}")
  return extension


def jsonl_rows(path: str, expected: str = "a JSON object", what: str = "data file") -> Iterator[tuple[str, dict]]:
  """("path:line", object) for every non-blank line of a .jsonl file.

  Args:
    path: the file.
    expected: what a line must hold, for the message when it is not a JSON object.
    what: what the file is, for messages about reading it.

  Returns:
    An iterator of (where, row); bad UTF-8, bad JSON and non-objects are UserErrors naming the line.
  """
  for number, line in _lines(path, what):
    if not line.strip():
      continue
    try:
      row = json.loads(line)
    except json.JSONDecodeError as e:
      raise UserError(f"{path}:{number}: not JSON ({e.msg})") from None
    if not isinstance(row, dict):
      raise UserError(f"{path}:{number}: expected {expected}")
    yield f"{path}:{number}", row


def _iter_jsonl(path: str, field: str) -> Iterator[str]:
  expected = f"a JSON object with a {field!r} field" + ("" if field == "text" else " (data.text_column)")
  for where, record in jsonl_rows(path, expected):
    if field not in record:
      raise UserError(f"{where}: expected {expected}")
    text = record[field]
    if not isinstance(text, str):
      raise UserError(f"{where}: {field!r} is {type(text).__name__}, not a string")
    if text.strip():
      yield text


def _iter_tfds(spec: str, column: str) -> Iterator[str]:
  source, length, _ = tfds_reader.open_split(spec)
  field = tfds_reader.text_field(source, spec, column)
  return _tfds_texts(tfds_reader.records(source, length), field, spec)


def _tfds_texts(records, field: str, spec: str) -> Iterator[str]:
  for record in records:
    text = record[field]
    if isinstance(text, bytes):
      try:
        text = text.decode("utf-8")
      except UnicodeDecodeError as e:
        raise UserError(f"{spec}: feature {field!r} is not UTF-8 text ({e.reason})") from None
    text = str(text)
    if text.strip():
      yield text


def _iter_hf(spec: str, column: str) -> Iterator[str]:
  dataset, split = hf_reader.open_split(spec, stream=True)
  where = f"{spec} split {split!r}"
  field = hf_reader.text_column(dataset, where, column)
  return _hf_texts(hf_reader.rows(dataset.select_columns([field]), where), field, where)


def _hf_texts(rows: Iterator[dict], field: str, where: str) -> Iterator[str]:
  count = 0
  for row in rows:
    text = row[field]
    if text is None:
      continue
    if not isinstance(text, str):
      raise UserError(f"{where}: column {field!r} holds {type(text).__name__}, not text (set data.text_column)")
    if text.strip():
      count += 1
      yield text
  if count == 0:
    raise UserError(f"no text in {where}")
