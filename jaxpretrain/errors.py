"""The one exception type for mistakes in what the user asked for.

The CLI prints a `UserError` as a single line and exits with status 2; anything else is a bug and
keeps its traceback.
"""


class UserError(Exception):
  """A bad config key, missing file, incompatible checkpoint, bad mesh, ...: the user can fix it."""
