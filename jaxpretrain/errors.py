"""The one exception type for mistakes in what the user asked for, and one-line warnings.

The CLI prints a `UserError` as a single line and exits with status 2; anything else is a bug and
keeps its traceback. `warn` is for what the user should know but need not stop for.
"""
import sys


class UserError(Exception):
  """A bad config key, missing file, incompatible checkpoint, bad mesh, ...: the user can fix it."""


def warn(message: str) -> None:
  """Prints `jaxpretrain: warning: MESSAGE` on stderr, once per job (from process 0 only)."""
  import jax  # pylint: disable=import-outside-toplevel
  if jax.process_index() == 0:
    print(f"jaxpretrain: warning: {message}", file=sys.stderr, flush=True)
