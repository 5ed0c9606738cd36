"""Where runs live: a path the user gives may be local or remote (`gs://bucket/run`, `s3://...`).

Run files (config.json, metrics.jsonl, reports, prepared data) go through these functions. A local
path is handled with `os` exactly as before (atomic writes by a temporary file and `os.replace`,
links checked by `files.refuse_links`); a remote one through `etils.epath`, the path library orbax
already uses for checkpoints. epath reaches `gs://` through fsspec (`pip install "jaxpretrain[gcs]"`
installs gcsfs), or through `tf.io.gfile` when TensorFlow is installed (it then prefers that).

What object stores lack, and what is done instead:
- no rename of a half-written file into place: one object write is already atomic (readers see the
  old object or the new one), so `write_text` writes the object directly;
- no append: `train/metrics.py` keeps metrics.jsonl in a local mirror and rewrites the object;
- no real directories: a "directory" exists once an object is under it (`makedirs` may do nothing);
- libraries that only write local files (ArrayRecord, tokenizers, matplotlib, TensorBoard) write
  into a local staging directory that `upload_dir` copies up (`local_cache` names one per remote path).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os
import posixpath
import re
import shutil
import tempfile

from jaxpretrain.errors import UserError, first_line

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
REMOTE_SCHEMES = ("gs", "s3", "az")  # what etils.epath reaches through fsspec (gcsfs, s3fs, adlfs)


def is_remote(path: str | os.PathLike) -> bool:
  """Whether `path` is a URL of a remote store (`gs://`, `s3://`, ...) rather than a local path.

  Args:
    path: a path the user gave, or one built from it.

  Returns:
    True for `gs://...`, `s3://...` and `az://...`; any other path is local, as it always was.
  """
  match = _SCHEME.match(os.fspath(path))
  return bool(match) and match.group(1) in REMOTE_SCHEMES


def epath(path: str | os.PathLike):
  """`path` as an `etils.epath.Path` (for orbax, or for the pathlib methods).

  Raises:
    UserError: for a remote path whose filesystem is not installed (e.g. gcsfs for `gs://`).
  """
  from etils import epath as epath_lib

  path = os.fspath(path)
  if is_remote(path) and not _epath_uses_tf():
    import fsspec

    scheme = _SCHEME.match(path).group(1)
    try:
      fsspec.get_filesystem_class({"gs": "gcs"}.get(scheme, scheme))  # epath asks fsspec for "gcs"
    except (ImportError, ValueError) as e:
      extra = ' (pip install "jaxpretrain[gcs]")' if scheme == "gs" else ""
      raise UserError(f"{path}: cannot reach {scheme}:// paths: {first_line(e)}{extra}") from None
  return epath_lib.Path(path)


@functools.cache
def _epath_uses_tf() -> bool:
  """Whether epath reaches remote paths through tf.io.gfile (TensorFlow installed, not turned off)."""
  turned_off = os.environ.get("EPATH_USE_TF", "").lower() in ("false", "no", "f", "0")
  return not turned_off and importlib.util.find_spec("tensorflow") is not None


def join(base: str, *names: str) -> str:
  """`base/name/...`: `os.path.join` for a local path, `/`-joined for a URL."""
  return posixpath.join(base, *names) if is_remote(base) else os.path.join(base, *names)


def absolute(path: str) -> str:
  """An absolute local path, or the URL as it is (`os.path.abspath` would mangle `gs://`)."""
  return path if is_remote(path) else os.path.abspath(path)


def exists(path: str) -> bool:
  """Whether a file or directory is at `path`."""
  return epath(path).exists() if is_remote(path) else os.path.exists(path)


def isdir(path: str) -> bool:
  """Whether `path` is a directory (remote: a prefix with objects under it)."""
  return epath(path).is_dir() if is_remote(path) else os.path.isdir(path)


def isfile(path: str) -> bool:
  """Whether `path` is a file (remote: an object)."""
  return epath(path).is_file() if is_remote(path) else os.path.isfile(path)


def makedirs(path: str) -> None:
  """Creates `path` and its parents when missing (on an object store this may do nothing)."""
  if is_remote(path):
    epath(path).mkdir(parents=True, exist_ok=True)
  else:
    os.makedirs(path, exist_ok=True)


def listdir(path: str) -> list[str]:
  """The names in directory `path`, sorted."""
  if is_remote(path):
    return sorted(p.name for p in epath(path).iterdir())
  return sorted(os.listdir(path))


def glob(directory: str, pattern: str) -> list[str]:
  """The paths in `directory` matching `pattern` (one level: `*.json`, `parts/part-*`), sorted."""
  if is_remote(directory):
    return sorted(str(p) for p in epath(directory).glob(pattern))
  import glob as glob_lib

  return sorted(glob_lib.glob(os.path.join(directory, pattern)))


def glob_pattern(pattern: str) -> list[str]:
  """The files and directories a glob pattern (`corpus/*.txt`, `gs://b/corpus/part-*`) matches, sorted.

  Args:
    pattern: local patterns may use `**` (recursive); remote ones match within the levels they name.

  Returns:
    The matching paths.
  """
  if not is_remote(pattern):
    import glob as glob_lib

    return sorted(glob_lib.glob(pattern, recursive=True))
  if "**" in pattern:
    raise UserError(f"{pattern}: a recursive ** is not supported on remote paths; use * for each level")
  parts = pattern.split("/")
  fixed = next(i for i, part in enumerate(parts) if any(c in part for c in "*?["))
  return glob("/".join(parts[:fixed]), "/".join(parts[fixed:]))


def getsize(path: str) -> int:
  """The size of the file at `path`, in bytes."""
  return epath(path).stat().length if is_remote(path) else os.path.getsize(path)


def remove(path: str) -> None:
  """Deletes the file at `path` (nothing when it is missing)."""
  if is_remote(path):
    epath(path).unlink(missing_ok=True)
  elif os.path.lexists(path):
    os.remove(path)


def rmtree(path: str) -> None:
  """Deletes the directory `path` and everything under it (nothing when it is missing)."""
  if is_remote(path):
    if exists(path):
      epath(path).rmtree(missing_ok=True)
  else:
    shutil.rmtree(path, ignore_errors=True)


def tree_size(path: str) -> int:
  """The bytes of every file under the directory `path`."""
  if is_remote(path):
    entries = list(epath(path).iterdir())
    return sum(tree_size(str(p)) if p.is_dir() else p.stat().length for p in entries)
  return sum(os.path.getsize(os.path.join(d, f)) for d, _, names in os.walk(path) for f in names)


def read_bytes(path: str) -> bytes:
  """The content of the file at `path` (OSError when it cannot be read)."""
  if is_remote(path):
    with epath(path).open("rb") as f:
      return f.read()
  with open(path, "rb") as f:
    return f.read()


def open_binary(path: str):
  """`path` opened for reading bytes (a local file, or the remote object's reader)."""
  return epath(path).open("rb") if is_remote(path) else open(path, "rb")


def write_bytes(path: str, data: bytes) -> None:
  """Writes `data` to `path` atomically: locally a temporary file renamed into place, remotely one
  object write (which readers see whole or not at all)."""
  if is_remote(path):
    with epath(path).open("wb") as f:
      f.write(data)
    return
  tmp = path + ".tmp"
  with open(tmp, "wb") as f:
    f.write(data)
  os.replace(tmp, path)


def write_text(path: str, text: str) -> None:
  """Writes UTF-8 `text` to `path` atomically (see `write_bytes`)."""
  write_bytes(path, text.encode("utf-8"))


def upload_dir(local_dir: str, target: str, *, last: tuple[str, ...] = ()) -> None:
  """Copies the files under `local_dir` to the directory `target` (local or remote), replacing
  files of the same names and leaving others there alone.

  Args:
    local_dir: a local directory.
    target: where its content goes.
    last: relative paths copied after every other file, in this order (e.g. a completion marker,
      so that a reader never sees it before what it vouches for).
  """
  names = []
  for folder, _, file_names in os.walk(local_dir):
    names += [os.path.relpath(os.path.join(folder, n), local_dir) for n in file_names]
  for rel in sorted(names, key=lambda n: (n in last, last.index(n) if n in last else 0, n)):
    destination = join(target, *rel.split(os.sep))
    if not is_remote(target):
      os.makedirs(os.path.dirname(destination), exist_ok=True)
    _copy_file(os.path.join(local_dir, rel), destination)


def _copy_file(source: str, destination: str) -> None:
  """Streams one file (shards may be large) from `source` to `destination`, either of them remote;
  a local destination is written under a temporary name and renamed into place."""
  partial = destination if is_remote(destination) else destination + ".tmp"
  writer = epath(partial).open("wb") if is_remote(partial) else open(partial, "wb")
  with open_binary(source) as src, writer as dst:
    shutil.copyfileobj(src, dst, 8 << 20)
  if partial != destination:
    os.replace(partial, destination)


@contextlib.contextmanager
def staged(target: str):
  """A local directory to write `target`'s files into, for writers that only know local files.

  Args:
    target: the directory wanted (local or remote).

  Returns:
    A context manager yielding `target` itself when it is local (created), else a temporary local
    directory whose files are copied to `target` when the block ends without an error (then removed).
  """
  if not is_remote(target):
    os.makedirs(target, exist_ok=True)
    yield target
    return
  local = tempfile.mkdtemp(prefix="jaxpretrain-stage-")
  try:
    yield local
    upload_dir(local, target)
  finally:
    shutil.rmtree(local, ignore_errors=True)


def download_dir(source: str, local_dir: str) -> None:
  """Copies every file under the directory `source` (local or remote) into `local_dir`.

  Args:
    source: a directory.
    local_dir: a local directory (created; files of the same names are replaced).
  """
  for name in listdir(source):
    path = join(source, name)
    if isdir(path):
      download_dir(path, os.path.join(local_dir, name))
    else:
      os.makedirs(local_dir, exist_ok=True)
      _copy_file(path, os.path.join(local_dir, name))


def local_copy(url: str) -> str:
  """A fresh local copy of the remote directory `url` (small ones: a tokenizer), in `local_cache(url)`.

  Args:
    url: a remote directory.

  Returns:
    The local directory, holding exactly what `url` holds now.
  """
  local = local_cache(url)
  shutil.rmtree(local, ignore_errors=True)
  download_dir(url, local)
  return local


def local_cache(url: str) -> str:
  """The local directory that mirrors the remote directory `url` (for files that only local
  libraries read or write): `$JAXPRETRAIN_CACHE` (default `$XDG_CACHE_HOME/jaxpretrain`, that is
  `~/.cache/jaxpretrain`)/remote/<hash>-<name>.

  Args:
    url: a remote directory.

  Returns:
    A local path (not created), the same for the same `url`.
  """
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  root = os.environ.get("JAXPRETRAIN_CACHE") or os.path.join(base, "jaxpretrain")
  digest = hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]
  return os.path.join(root, "remote", f"{digest}-{posixpath.basename(url.rstrip('/')) or 'root'}")
