"""When the loop stops for a preemption: the same step on every process, whoever got the signal."""

import os
import signal

import jax
import numpy as np
import pytest
from jax.experimental import multihost_utils

from jaxpretrain.train import preemption


def test_one_process_stops_after_sigterm_and_restores_the_handler():
  before = signal.getsignal(signal.SIGTERM)
  with preemption.PreemptionWatcher() as watcher:
    assert not watcher.should_stop(1)
    os.kill(os.getpid(), signal.SIGTERM)
    assert watcher.should_stop(2)
  assert signal.getsignal(signal.SIGTERM) == before


def test_with_the_preemption_service_no_python_handler_shadows_it(monkeypatch):
  # JAX's service catches SIGTERM in C++; a Python handler would replace it and the signalled
  # process would stop alone (tests/parallel/test_multihost.py runs the real thing on 2 processes).
  monkeypatch.setattr(jax, "process_count", lambda: 2)
  monkeypatch.setattr(preemption, "_preemption_service", lambda: object())
  sync_steps = []
  monkeypatch.setattr(
    multihost_utils, "reached_preemption_sync_point", lambda step: sync_steps.append(step) or step == 7
  )
  before = signal.getsignal(signal.SIGTERM)
  with preemption.PreemptionWatcher() as watcher:
    assert signal.getsignal(signal.SIGTERM) == before
    assert [watcher.should_stop(step) for step in (5, 6, 7)] == [False, False, True]
  assert sync_steps == [5, 6, 7]


@pytest.mark.parametrize(
  "local_flag,other_flag,stop", [(False, False, False), (True, False, True), (False, True, True)]
)
def test_without_the_service_any_process_flag_stops_all(monkeypatch, local_flag, other_flag, stop):
  monkeypatch.setattr(jax, "process_count", lambda: 2)
  monkeypatch.setattr(preemption, "_preemption_service", lambda: None)
  monkeypatch.setattr(
    multihost_utils, "process_allgather", lambda flag: np.array([int(flag), int(other_flag)], np.int32)
  )
  with preemption.PreemptionWatcher() as watcher:
    if local_flag:
      os.kill(os.getpid(), signal.SIGTERM)
    assert watcher.should_stop(3) is stop
