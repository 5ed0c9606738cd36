"""One training run per workdir: an advisory `fcntl.flock` on WORKDIR/.lock, held for the run's life.

Two runs on one workdir would both train and interleave their metrics rows and checkpoints. The
first takes the lock; a second one fails with a one-line error naming the holder's pid. The lock
dies with its process, so a lock file left by a crashed run is simply taken again (with a warning
naming the pid that is gone). Only process 0 of a multi-process run takes it. An object store
(`gs://...`) has no locks: a remote workdir is not locked, and a note says so.
"""

from __future__ import annotations

import fcntl
import os
import socket

from jaxpretrain import paths
from jaxpretrain.errors import UserError, warn

LOCK_NAME = ".lock"


class WorkdirLock:
  """The held lock of one workdir; `release` (or the process's end) gives it up.

  Args:
    workdir: the run directory (created when missing).
  """

  def __init__(self, workdir: str):
    os.makedirs(workdir, exist_ok=True)
    self.path = os.path.join(workdir, LOCK_NAME)
    self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # BlockingIOError: another open file holds it
      holder = _read(self._fd)
      os.close(self._fd)
      self._fd = None
      raise UserError(
        f"{workdir} is in use by another run ({_describe(holder)} holds {self.path}); "
        f"wait for it to finish or use another --workdir"
      ) from None
    previous = _read(self._fd)
    if previous:  # written by a holder that never released it: that process is gone
      warn(f"the previous run on {workdir} ({_describe(previous)}) ended without releasing {self.path}; taking it over")
    os.ftruncate(self._fd, 0)
    os.pwrite(self._fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
    os.fsync(self._fd)

  def release(self) -> None:
    """Empties the lock file (a clean end leaves no holder's pid behind) and unlocks it; idempotent."""
    if self._fd is None:
      return
    try:
      os.ftruncate(self._fd, 0)
    finally:
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None


def _read(fd: int) -> str:
  return os.pread(fd, 256, 0).decode("utf-8", "replace").strip()


def _describe(holder: str) -> str:
  return holder or "a process that wrote no pid"


def acquire(workdir: str, process_index: int) -> WorkdirLock | None:
  """The workdir lock for process 0; None on the other processes of a multi-process run.

  Args:
    workdir: the run directory.
    process_index: `jax.process_index()`.

  Returns:
    The held `WorkdirLock`, or None (also for a remote workdir, which cannot be locked).

  Raises:
    UserError: another live process holds the lock (names its pid).
  """
  if process_index != 0:
    return None
  if paths.is_remote(workdir):
    warn(f"{workdir} is remote and cannot be locked: make sure no other run trains in it", kind="note")
    return None
  return WorkdirLock(workdir)
