"""The one exception type for mistakes in what the user asked for, and one-line messages.

The CLI prints a `UserError` as a single line and exits with status 2; anything else is a bug and
keeps its traceback. `warn` is for what the user should know but need not stop for; `first_line`
shortens another library's exception to what such a line can hold.
"""

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


def warn(message: str, *, kind: str = "warning") -> None:
  """Prints `jaxpretrain: KIND: MESSAGE` on stderr, once per job (from process 0 only).

  Args:
    message: one line.
    kind: "warning" (something may be wrong) or "note" (what was done, e.g. which weights start fresh).
  """
  import jax

  if jax.process_index() == 0:
    print(f"jaxpretrain: {kind}: {message}", file=sys.stderr, flush=True)
