"""Stopping cleanly when the scheduler says so: SIGTERM, or JAX's multi-host preemption sync point.

The loop asks `should_stop(step)` after every step; on True it saves, waits for the save and
returns normally, so the process exits 0 and a re-run of the same command resumes exactly.
Every process of a multi-process run must stop after the same step (the save is collective), even
when only one of them was signalled.
"""

from __future__ import annotations

import signal
import threading

import jax
import numpy as np
from jax.experimental import multihost_utils

from jaxpretrain.errors import StoppedBeforeTraining


def _preemption_service():
  """JAX's preemption sync manager when this process runs one (multi-process runs), else None."""
  if jax.process_count() == 1:
    return None
  from jax._src import distributed  # no public accessor; `reached_preemption_sync_point` reads the same

  return distributed.global_state.preemption_sync_manager


class PreemptionWatcher:
  """Answers "stop after this step?" the same way on every process; a context manager.

  Multi-process runs with JAX's preemption service (the default): the service's own C++ SIGTERM
  handler catches the signal, and the coordination service picks one step at which every process's
  `reached_preemption_sync_point` is True. A Python SIGTERM handler would replace the C++ one, so
  none is installed then. Single process: a Python handler sets a flag. Multi-process without the
  service: the flag, OR-ed across processes every step (one small collective per step).
  """

  def __init__(self):
    self.requested = False
    self._previous = None
    self._service = None

  def __enter__(self):
    self._service = _preemption_service()
    if self._service is None and threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._on_signal)
    return self

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
      self._previous = None

  def _on_signal(self, signum, frame):
    del signum, frame
    self.requested = True

  def should_stop(self, step: int) -> bool:
    """True when `step` is where every process stops together; call it after every step."""
    if self._service is not None:
      return bool(multihost_utils.reached_preemption_sync_point(step))
    if jax.process_count() > 1:
      return bool(np.any(multihost_utils.process_allgather(np.int32(self.requested))))
    return self.requested


class stop_before_training:  # noqa: N801 (used as `with stop_before_training():`)
  """During a run's setup, turns SIGTERM into `StoppedBeforeTraining` (the CLI exits 0 saying that
  nothing was trained yet), instead of the default kill with status 143.

  Setup writes nothing that a re-run does not take up again (prepare and checkpoints commit
  atomically), so stopping there loses no work. Single-process runs only: with several processes
  JAX's preemption service owns SIGTERM, and a Python handler would replace its C++ one.
  """

  def __enter__(self):
    self._previous = None
    if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._raise)
    return self

  @staticmethod
  def _raise(signum, frame):
    raise StoppedBeforeTraining()

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
    return False
