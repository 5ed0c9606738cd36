"""The one exception type for mistakes in what the user asked for, and one-line messages.

The CLI prints a `UserError` as a single line and exits with status 2; anything else is a bug and
keeps its traceback. `warn` is for what the user should know but need not stop for; `first_line`
shortens another library's exception to what such a line can hold.
"""

import contextlib
import errno
import os
import re
import sys


class StoppedBeforeTraining(Exception):
  """SIGTERM arrived while a run was still being set up (preparing data, restoring, compiling)."""


class UserError(Exception):
  """A bad config key, missing file, incompatible checkpoint, bad mesh, ...: the user can fix it."""


def first_line(error: BaseException, *, with_type: bool = False) -> str:
  """The first line of an exception's message, for a one-line report of it.

  Args:
    error: any exception.
    with_type: prefix the exception's type name and cut the line at 300 characters (for errors from
      deep inside a library, e.g. a failed checkpoint write, whose type says what went wrong).

  Returns:
    "first line" (the type name when the message is empty), or "TypeName: first line".
  """
  lines = str(error).strip().splitlines()
  if with_type:
    return f"{type(error).__name__}: {lines[0][:300] if lines else ''}"
  return lines[0] if lines else type(error).__name__


# Where the storage under a path gave out or refused: what a user fixes by freeing space, raising a
# quota or file-size limit, or choosing another disk. Other OS errors keep their tracebacks.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EIO})

# How an errno shows up in the text of errors raised by C++ and Rust libraries (tensorstore: "...
# [os_error_code='28']", tokenizers: "(os error 27)") and by Python ("[Errno 28]"); array_record
# gives only the OS's words ("write() failed: File too large").
_ERRNO_IN_TEXT = re.compile(r"os_error_code='?(\d+)|\(os error (\d+)\)|\[Errno (\d+)\]")


def storage_failure(error: BaseException) -> str | None:
  """The OS cause of a failed write, when `error` (or an exception it chains) is one.

  Args:
    error: any exception, e.g. an OSError, or a library's error whose text carries an errno.

  Returns:
    e.g. "No space left on device [errno 28]", or None when no storage errno is in it.
  """
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    codes = [error.errno] if isinstance(error, OSError) and error.errno else []
    codes += [int(next(g for g in m.groups() if g)) for m in _ERRNO_IN_TEXT.finditer(str(error))]
    codes += [code for code in sorted(STORAGE_ERRNOS) if os.strerror(code) in str(error)]  # array_record's text
    for code in codes:
      if code in STORAGE_ERRNOS:
        return f"{os.strerror(code)} [errno {code}]"
    error = error.__cause__ or error.__context__
  return None


@contextlib.contextmanager
def storage_errors(doing: str):
  """Turns a storage failure (full disk, file-size limit, read-only disk) inside into one line.

  Args:
    doing: what was being written, for the message: e.g. "preparing data in /data/prepared".

  Raises:
    UserError: "<doing> failed: <OS cause>"; any other exception passes through unchanged.
  """
  try:
    yield
  except UserError:
    raise
  except Exception as e:
    cause = storage_failure(e)
    if cause is None:
      raise
    raise UserError(f"{doing} failed: {cause}") from None


def warn(message: str, *, kind: str = "warning") -> None:
  """Prints `jaxpretrain: KIND: MESSAGE` on stderr, once per job (from process 0 only).

  Args:
    message: one line.
    kind: "warning" (something may be wrong) or "note" (what was done, e.g. which weights start fresh).
  """
  import jax

  if jax.process_index() == 0:
    print(f"jaxpretrain: {kind}: {message}", file=sys.stderr, flush=True)
