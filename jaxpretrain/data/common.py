"""What every data pipeline shares: the `RunData` a run reads, the held-out split, boundary ids, read-ahead.

Pretraining (`pretrain/`) and fine-tuning (`finetune/`) both hand the loop a `RunData`, hold out
the same hash-picked examples for evaluation, and agree on which ids open and close a document.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jaxpretrain.errors import UserError


@dataclasses.dataclass
class RunData:
  """The data side of a run.

  Attributes:
    train: infinite iterator of process-local numpy batches with `get_state()`/`set_state()`.
    eval_batches: fn() -> iterable of process-local eval batches (the same every call).
    steps_per_epoch: optimizer steps in one pass over the training data.
    tokenizer: the run's `Tokenizer` (saved with checkpoints).
    seq_len: tokens per example.
    info: task-specific facts (special ids, label names, ...), JSON-able.
    step_tokens: for a mixture of pretraining sources, fn(step) -> {"tokens/<source>": non-padding
      tokens of that source in the global batch of dataset step `step` (0-based)}; else None.
  """

  train: Iterator
  eval_batches: Callable[[], Iterable[dict]]
  steps_per_epoch: int
  tokenizer: Any
  seq_len: int
  info: dict
  step_tokens: Callable[[int], dict[str, int]] | None = None


def held_out(index: int, seed: int, eval_fraction: float) -> bool:
  """Whether example `index` belongs to the eval split (a fixed hash of index and seed).

  Args:
    index: the example's (document's, record's) position in its source.
    seed: the run's `train.seed`.
    eval_fraction: the share held out (`data.eval_fraction`).

  Returns:
    True for an eval example.
  """
  if eval_fraction <= 0:
    return False
  # splitmix64: a well-mixed 64-bit hash, identical on every machine and Python version.
  x = (index * 0x9E3779B97F4A7C15 + seed * 0xD1B54A32D192ED03 + 0x632BE59BD9B4E019) % 2**64
  x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
  x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) % 2**64
  x ^= x >> 31
  return x / 2**64 < eval_fraction


def boundary_ids(special_ids: dict) -> tuple[int, int]:
  """(BOS, EOS) ids, as `pretrain/packing.py` packs documents: the tokenizer's cls and sep, i.e.
  [CLS]/[SEP] for WordPiece and <|endoftext|> for both in GPT-2 (whose eos stands in for them)."""
  return special_ids["cls"], special_ids["sep"]


def check_vocab_size(tokenizer, vocab_size: int) -> None:
  """A `UserError` when the tokenizer has more tokens than the model's embedding (`model.vocab_size`)."""
  if tokenizer.vocab_size > vocab_size:
    raise UserError(f"the tokenizer has {tokenizer.vocab_size} tokens but model.vocab_size={vocab_size}")


def read_ahead(items, depth: int, *, name: str = "prepare-read-ahead", join_timeout: float = 0.0):
  """Yields `items` while a background thread already produces up to `depth` more.

  Reading a source (Python generators, file or tfds decoding) then overlaps with encoding, whose
  Rust code releases the GIL; the training loop's `Prefetcher` runs its device transfers here too.
  An exception of the source is raised here, at its place in the order. Once the consumer stops
  (closes the generator, or it is collected), the thread stops at its next hand-over.

  Args:
    items: any iterable (iterated in the thread; it starts with the first item asked for).
    depth: how many items the thread may run ahead.
    name: the thread's name.
    join_timeout: seconds to wait for the thread to end when the consumer stops (0 = do not wait).

  Yields:
    The items of `items`, in order.
  """
  buffer, done = queue.Queue(maxsize=depth), object()
  stop = threading.Event()

  def put(entry) -> bool:
    """Waits for room; False once the consumer has stopped (nobody will take it)."""
    while not stop.is_set():
      try:
        buffer.put(entry, timeout=0.1)
        return True
      except queue.Full:
        pass
    return False

  def produce():
    try:
      for item in items:
        if not put((item, None)):
          return
      put((done, None))
    except BaseException as e:  # handed to the consumer, raised there
      put((done, e))

  thread = threading.Thread(target=produce, name=name, daemon=True)
  thread.start()
  try:
    while True:
      item, error = buffer.get()
      if item is done:
        if error is not None:
          raise error
        return
      yield item
  finally:
    stop.set()
    if join_timeout:
      thread.join(timeout=join_timeout)
