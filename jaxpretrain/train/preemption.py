"""Stopping cleanly when the scheduler says so: SIGTERM, or JAX's multi-host preemption sync point.

The loop asks `should_stop(step)` after every step; on True it saves, waits for the save and
returns normally, so the process exits 0 and a re-run of the same command resumes exactly.
"""
from __future__ import annotations

import signal
import threading

import jax


class PreemptionWatcher:
  """Turns SIGTERM into a flag the loop polls; a context manager that restores the old handler."""

  def __init__(self):
    self.requested = False
    self._previous = None

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._on_signal)
    return self

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)

  def _on_signal(self, signum, frame):
    del signum, frame
    self.requested = True

  def should_stop(self, step: int) -> bool:
    """True when this step is where every process stops together.

    Multi-host: JAX's preemption sync point (the coordination service tells every process the
    same step once any of them is notified); a local SIGTERM also counts, so a single-host
    SIGTERM is honoured even without the service.
    """
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils
      try:
        if multihost_utils.reached_preemption_sync_point(step):
          return True
      except RuntimeError:  # no preemption service (e.g. CPU gloo runs): fall back to the flag
        pass
    return self.requested
