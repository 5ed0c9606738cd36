"""Host→device prefetch in a background thread, keeping the data iterator state of each batch.

The state travels with its batch so a checkpoint records exactly the batches the model has
consumed, not the ones sitting in the prefetch queue. The thread is `data.common.read_ahead`'s:
it hands over errors in order and stops once the loop closes the prefetcher.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from jaxpretrain.data.common import read_ahead


class Prefetcher:
  """Runs `next(iterator)` and `put(batch)` `depth` batches ahead of the training loop.

  Args:
    iterator: yields host batches; `get_state()` is called after each batch when present.
    put: host batch -> device batch (e.g. `strategy.put_batch`).
    depth: batches kept ready (0 = synchronous, no thread).
  """

  def __init__(self, iterator: Iterator, put: Callable, depth: int = 2):
    self._iterator, self._put = iterator, put
    self.wait_seconds = 0.0  # time the consumer spent blocked on data
    self._ahead = read_ahead(self._produce_all(), depth, name="prefetch", join_timeout=5) if depth > 0 else None

  def _produce(self):
    batch = next(self._iterator)
    state = self._iterator.get_state() if hasattr(self._iterator, "get_state") else None
    return self._put(batch), state

  def _produce_all(self):
    while True:
      try:
        item = self._produce()
      except StopIteration:  # the iterator is exhausted: so is the prefetcher
        return
      yield item

  def next(self):
    """Returns (device batch, iterator state after this batch)."""
    start = time.perf_counter()
    try:
      return self._produce() if self._ahead is None else next(self._ahead)
    finally:
      self.wait_seconds += time.perf_counter() - start

  def close(self):
    """Stops the thread (waiting up to 5 s for it)."""
    if self._ahead is not None:
      self._ahead.close()
