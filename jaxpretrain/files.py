"""The one place that reads files a user hands us (or may have damaged), and checks paths they give.

Data files (csv/tsv/jsonl/txt), run files (config.json, data_info.json, metrics.jsonl), tokenizer
and HF files are read through these functions, so a missing, unreadable, truncated, binary or
non-UTF-8 file is a `UserError` of one line naming the file and the problem, never a
`UnicodeDecodeError` or `JSONDecodeError` traceback. Text is UTF-8 (a UTF-8 byte-order mark is
skipped); other encodings are named when they can be recognized (UTF-16/32 by their byte-order mark
or NUL bytes), and the user is asked to convert the file.

`check_dir` and `check_file` check a path the user gave (`--workdir`, `data.train`, `init_from`,
`data.prepared_dir`) is the right kind of thing and, for directories we write into, writable.
Any of these paths may be remote (`gs://...`, see `paths.py`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from typing import Any

from jaxpretrain import paths
from jaxpretrain.errors import UserError

_BOMS = (
  (b"\xff\xfe\x00\x00", "UTF-32"),
  (b"\x00\x00\xfe\xff", "UTF-32"),
  (b"\xff\xfe", "UTF-16"),
  (b"\xfe\xff", "UTF-16"),
)
_UTF8_BOM = b"\xef\xbb\xbf"


def _os_problem(error: OSError) -> str:
  """What an OSError says about a path, in a few words."""
  if isinstance(error, FileNotFoundError):
    return "not found"
  if isinstance(error, IsADirectoryError):
    return "is a directory, not a file"
  if isinstance(error, NotADirectoryError):
    return "a part of the path is a file, not a directory"
  if isinstance(error, PermissionError):
    return "permission denied"
  return error.strerror or type(error).__name__


def _open_binary(path: str, what: str):
  if paths.isdir(path):
    raise UserError(f"{what} {path} is a directory, not a file")
  try:
    return paths.open_binary(path)
  except OSError as e:
    raise UserError(f"cannot read {what} {path}: {_os_problem(e)}") from None


def _not_utf8(path: str, what: str, raw: bytes, number: int, offset: int, error: UnicodeDecodeError) -> UserError:
  if number == 1:
    for bom, encoding in _BOMS:
      if raw.startswith(bom):
        return UserError(f"{what} {path} is {encoding} text, not UTF-8: save it as UTF-8")
  if b"\x00" in raw:
    return UserError(f"{what} {path} is not UTF-8 text: NUL byte at line {number} (a binary file, or UTF-16/32 text?)")
  byte = raw[error.start]
  if _has_nul(path):
    return UserError(
      f"{what} {path} is not UTF-8 text: bad byte 0x{byte:02x} at line {number} and NUL bytes (a binary file?)"
    )
  return UserError(
    f"{what} {path} is not UTF-8 text: bad byte 0x{byte:02x} at line {number}, byte offset {offset + error.start}"
  )


def _has_nul(path: str, size: int = 8192) -> bool:
  """Whether the first `size` bytes of a file hold a NUL byte (text never does; binary files do)."""
  try:
    with paths.open_binary(path) as f:
      return b"\x00" in f.read(size)
  except OSError:
    return False


def iter_lines(path: str, what: str = "file", *, keepends: bool = False) -> Iterator[tuple[int, str]]:
  """(1-based line number, decoded line) of a UTF-8 text file, read lazily.

  Args:
    path: the file.
    what: what the file is, for messages ("labeled data file", "tokenizer file", ...).
    keepends: keep each line's line ending (for the csv module).

  Returns:
    An iterator; opening and decoding errors are `UserError`s naming the file (and line).
  """
  offset = 0
  with _open_binary(path, what) as f:
    for number, raw in enumerate(f, 1):
      if number == 1 and raw.startswith(_UTF8_BOM):
        raw, offset = raw[len(_UTF8_BOM) :], len(_UTF8_BOM)
      try:
        line = raw.decode("utf-8")
      except UnicodeDecodeError as e:
        raise _not_utf8(path, what, raw, number, offset, e) from None
      if "\x00" in line:
        raise UserError(
          f"{what} {path} is not UTF-8 text: NUL byte at line {number} (a binary file, or UTF-16/32 text?)"
        )
      offset += len(raw)
      yield number, line if keepends else line.rstrip("\r\n")


def open_text(path: str, what: str = "file") -> Iterator[str]:
  """The lines of a UTF-8 text file with their line endings (what `csv.reader` reads).

  Args:
    path: the file.
    what: what the file is, for messages.

  Returns:
    An iterator of lines; errors as for `iter_lines`.
  """
  return (line for _, line in iter_lines(path, what, keepends=True))


def read_text(path: str, what: str = "file") -> str:
  """The whole content of a UTF-8 text file.

  Args:
    path: the file.
    what: what the file is, for messages.

  Returns:
    The text; a missing, unreadable, binary or non-UTF-8 file is a `UserError` naming it.
  """
  return "".join(line for _, line in iter_lines(path, what, keepends=True))


def read_json(path: str, what: str = "JSON file", *, expect: type | None = dict) -> Any:
  """A JSON file's content.

  Args:
    path: the file.
    what: what the file is, for messages ("run config", "data_info.json", ...).
    expect: the type the top-level value must have (None: any).

  Returns:
    The parsed value; an empty, truncated or invalid file is a `UserError` naming it.
  """
  text = read_text(path, what)
  if not text.strip():
    raise UserError(f"{what} {path} is empty (truncated or damaged?)")
  try:
    value = json.loads(text)
  except json.JSONDecodeError as e:
    raise UserError(
      f"{what} {path} is not valid JSON (truncated or damaged?): {e.msg} (line {e.lineno}, column {e.colno})"
    ) from None
  if expect is not None and not isinstance(value, expect):
    raise UserError(f"{what} {path} holds a JSON {type(value).__name__}, expected a {expect.__name__}")
  return value


def read_jsonl(path: str, what: str = "JSON lines file", *, allow_cut_last_line: bool = False) -> list[dict]:
  """The JSON objects of a .jsonl file, one per non-blank line.

  Args:
    path: the file.
    what: what the file is, for messages.
    allow_cut_last_line: leave out a last line that is not JSON (a writer killed mid-line).

  Returns:
    The objects; bad UTF-8, bad JSON or a non-object line is a `UserError` naming file and line.
  """
  rows = []
  lines = [(number, line) for number, line in iter_lines(path, what) if line.strip()]
  for i, (number, line) in enumerate(lines):
    try:
      row = json.loads(line)
    except json.JSONDecodeError as e:
      if allow_cut_last_line and i == len(lines) - 1:
        break
      raise UserError(f"{what} {path}:{number}: not JSON ({e.msg})") from None
    if not isinstance(row, dict):
      raise UserError(f"{what} {path}:{number}: expected a JSON object")
    rows.append(row)
  return rows


def check_file(path: str, what: str) -> str:
  """`path` is an existing, readable file.

  Args:
    path: the path the user gave.
    what: what it should be, for messages (the config key or flag).

  Returns:
    `path`.
  """
  if not paths.exists(path):
    raise UserError(f"{what} {path}: not found")
  if paths.isdir(path):
    raise UserError(f"{what} {path} is a directory, expected a file")
  if paths.is_remote(path):
    return path  # a store's permissions show when it is read
  if not os.access(path, os.R_OK):
    raise UserError(f"{what} {path}: permission denied (cannot read it)")
  return path


def check_dir(path: str, what: str, *, writable: bool = False, must_exist: bool = False) -> str:
  """`path` is a directory (or, unless `must_exist`, can be created), and writable when asked.

  Args:
    path: the path the user gave.
    what: what it should be, for messages (`--workdir`, `data.prepared_dir`, ...).
    writable: we will write into it: it (or, when it does not exist yet, its nearest existing
      parent) must be writable.
    must_exist: it must exist already (a directory to read from).

  Returns:
    `path`.
  """
  if paths.is_remote(path):  # no parent directories, no permission bits to ask: a failed write says why
    if paths.isfile(path):
      raise UserError(f"{what} {path} is a file, expected a directory")
    if must_exist and not paths.isdir(path):
      raise UserError(f"{what} {path}: no such directory")
    return path
  if os.path.exists(path):
    if not os.path.isdir(path):
      raise UserError(f"{what} {path} is a file, expected a directory")
    if not os.access(path, os.R_OK | os.X_OK):
      raise UserError(f"{what} {path}: permission denied (cannot read the directory)")
    if writable and not os.access(path, os.W_OK | os.X_OK):
      raise UserError(f"{what} {path} is not writable (permission denied)")
    return path
  if must_exist:
    raise UserError(f"{what} {path}: no such directory")
  parent = os.path.dirname(os.path.abspath(path))
  while not os.path.exists(parent):
    parent = os.path.dirname(parent)
  if not os.path.isdir(parent):
    raise UserError(f"{what} {path} cannot be created: {parent} is a file, not a directory")
  if writable and not os.access(parent, os.W_OK | os.X_OK):
    raise UserError(f"{what} {path} cannot be created: {parent} is not writable (permission denied)")
  return path


def refuse_links(links: Iterable[str], what: str) -> None:
  """None of `paths` is a symbolic link: jaxpretrain rewrites, replaces or cleans these up, and
  would then follow a link (writing where it points) or remove it (losing what the user put there).

  Args:
    links: paths that may or may not exist (remote ones have no links: skipped).
    what: why they are ours, for the message (e.g. "a run's own files").

  Raises:
    UserError: naming the first link and its target.
  """
  for path in links:
    if os.path.islink(path):
      raise UserError(
        f"{path} is a symbolic link (to {os.readlink(path)}): jaxpretrain neither follows nor removes links among "
        f"{what}; replace it with a copy of its target, or move it away"
      )
