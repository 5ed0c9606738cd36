"""Stopping cleanly when the scheduler (or the user) says so: SIGTERM, Ctrl-C, or JAX's multi-host
preemption sync point.

The loop asks `should_stop(step)` after every step; on True it saves, waits for the save and
returns normally, so the process exits 0 and a re-run of the same command resumes exactly.
Every process of a multi-process run must stop after the same step (the save is collective), even
when only one of them was signalled.
"""

from __future__ import annotations

import os
import signal
import sys
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

  Ctrl-C (SIGINT) is a stop request like SIGTERM (with the service: it is passed on to the
  service as a SIGTERM); a second Ctrl-C aborts at once with KeyboardInterrupt.
  """

  def __init__(self):
    self.requested = False
    self.signal_name = ""  # "SIGTERM" or "Ctrl-C": what asked the run to stop
    self._previous = {}
    self._service = None

  def __enter__(self):
    self._service = _preemption_service()
    if threading.current_thread() is threading.main_thread():
      if self._service is None:
        self._previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, self._on_sigterm)
      self._previous[signal.SIGINT] = signal.signal(signal.SIGINT, self._on_sigint)
    return self

  def __exit__(self, *exc):
    for signum, previous in self._previous.items():
      signal.signal(signum, previous)
    self._previous = {}

  def _on_sigterm(self, signum, frame):
    del signum, frame
    self.requested, self.signal_name = True, self.signal_name or "SIGTERM"

  def _on_sigint(self, signum, frame):
    del signum, frame
    if self.signal_name == "Ctrl-C":  # the second one: stop now, without saving
      raise KeyboardInterrupt
    self.signal_name = "Ctrl-C"
    print(
      "\njaxpretrain: Ctrl-C: saving at the next step, then stopping (press Ctrl-C again to abort without saving)",
      file=sys.stderr,
      flush=True,
    )
    if self._service is not None:
      os.kill(os.getpid(), signal.SIGTERM)  # the service's handler: every process stops at one step
    else:
      self.requested = True

  def should_stop(self, step: int) -> bool:
    """True when `step` is where every process stops together; call it after every step."""
    if self._service is not None:
      return bool(multihost_utils.reached_preemption_sync_point(step))
    if jax.process_count() > 1:
      return bool(np.any(multihost_utils.process_allgather(np.int32(self.requested))))
    return self.requested


class stop_before_training:  # noqa: N801 (used as `with stop_before_training():`)
  """During a run's setup, turns SIGTERM and the first Ctrl-C into `StoppedBeforeTraining` (the CLI
  exits 0 saying that nothing was trained yet), instead of the default kill with status 143 or 130.

  Setup writes nothing that a re-run does not take up again (prepare and checkpoints commit
  atomically), so stopping there loses no work. Single-process runs only: with several processes
  JAX's preemption service owns SIGTERM, and a Python handler would replace its C++ one.
  """

  def __enter__(self):
    self._previous = {}
    if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
      for signum in (signal.SIGTERM, signal.SIGINT):
        self._previous[signum] = signal.signal(signum, self._raise)
    return self

  @staticmethod
  def _raise(signum, frame):
    raise StoppedBeforeTraining("SIGTERM" if signum == signal.SIGTERM else "Ctrl-C")

  def __exit__(self, *exc):
    for signum, previous in self._previous.items():
      signal.signal(signum, previous)
    return False
