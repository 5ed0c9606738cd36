"""Host→device prefetch in a background thread, keeping the data iterator state of each batch.

The state travels with its batch so a checkpoint records exactly the batches the model has
consumed, not the ones sitting in the prefetch queue.
"""
from __future__ import annotations

import queue
import threading
import time
from typing import Callable, Iterator


class Prefetcher:
  """Runs `next(iterator)` and `put(batch)` `depth` batches ahead of the training loop.

  Args:
    iterator: yields host batches; `get_state()` is called after each batch when present.
    put: host batch -> device batch (e.g. `strategy.put_batch`).
    depth: batches kept ready (0 = synchronous, no thread).
  """

  def __init__(self, iterator: Iterator, put: Callable, depth: int = 2):
    self._iterator, self._put, self._depth = iterator, put, depth
    self.wait_seconds = 0.0  # time the consumer spent blocked on data
    if depth > 0:
      self._queue: queue.Queue = queue.Queue(maxsize=depth)
      self._stop = threading.Event()
      self._thread = threading.Thread(target=self._fill, daemon=True)
      self._thread.start()

  def _produce(self):
    batch = next(self._iterator)
    state = self._iterator.get_state() if hasattr(self._iterator, "get_state") else None
    return self._put(batch), state

  def _fill(self):
    try:
      while not self._stop.is_set():
        item = self._produce()
        while not self._stop.is_set():
          try:
            self._queue.put(("ok", item), timeout=0.1)
            break
          except queue.Full:
            continue
    except BaseException as e:  # surfaced in the consumer's thread
      self._queue.put(("error", e))

  def next(self):
    """Returns (device batch, iterator state after this batch)."""
    start = time.perf_counter()
    try:
      if self._depth == 0:
        return self._produce()
      kind, item = self._queue.get()
      if kind == "error":
        raise item
      return item
    finally:
      self.wait_seconds += time.perf_counter() - start

  def close(self):
    if self._depth > 0:
      self._stop.set()
      self._thread.join(timeout=5)
