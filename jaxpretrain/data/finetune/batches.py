"""Batches of in-memory arrays: `LabeledBatches` for training (endless, checkpointable by step) and
`padded_batches` for evaluation (every row once); both cut each batch to its length bucket (`buckets.py`)."""

from __future__ import annotations

import math

import numpy as np

from jaxpretrain.data.finetune import buckets as buckets_lib
from jaxpretrain.data.finetune.features import IGNORE

FILL = -1  # a row index that stands for a padding row (weight 0)


def _take(arrays: dict, rows: np.ndarray, *, weighted: bool) -> dict:
  """The `rows` of `arrays`; `FILL` rows repeat row 0 with weight 0 and labels -100 (scored nowhere)."""
  real = rows != FILL
  batch = {k: v[np.where(real, rows, 0)] for k, v in arrays.items()}
  if weighted or not real.all():
    batch["weight"] = batch.get("weight", np.ones(len(rows), np.float32)) * real.astype(np.float32)
  if not real.all() and "labels" in batch:
    batch["labels"][~real] = IGNORE
  return batch


class LabeledBatches:
  """Endless batches of in-memory arrays, reshuffled every epoch; checkpointable by step.

  Without grouping (`grouping=0`), global batch k holds rows k*B .. k*B+B-1 of the concatenation of
  epoch permutations (epoch e permuted by a generator seeded with (seed, e)). With grouping G,
  every epoch is ceil(n/B) batches of its own: its permutation is cut into windows of G*B rows,
  each window sorted by length (longest first) and cut into batches, and the epoch's batches are
  shuffled (seeded by (seed, e, 1)); the epoch's last short batch is filled with weight-0 rows, as
  a final partial batch. Either way this process takes its contiguous slice of each global batch,
  and with `buckets` > 0 the batch is cut to the bucket of its longest row (over the global batch,
  so every process agrees on the shape). The state is the step alone.

  Args:
    arrays: equal-length arrays; [rows, length] ones with an `attention_mask` can be bucketed.
    global_batch_size: B.
    seed: the shuffling seed.
    buckets: at most this many batch lengths (`buckets.choose`); 0 = every batch keeps the full length.
    grouping: G, windows of G batches sorted by length; 0 = off.
    process_index, process_count: this process's slice of every global batch.
  """

  def __init__(
    self,
    arrays: dict,
    global_batch_size: int,
    seed: int,
    *,
    buckets: int = buckets_lib.DEFAULT_BUCKETS,
    grouping: int = buckets_lib.DEFAULT_GROUPING,
    multiple: int = buckets_lib.MULTIPLE,
    process_index: int = 0,
    process_count: int = 1,
  ):
    self.arrays, self.batch, self.seed = arrays, global_batch_size, seed
    self.n = len(next(iter(arrays.values())))
    self.local = global_batch_size // process_count
    self.offset = process_index * self.local
    self.step = 0
    self.lengths = buckets_lib.row_lengths(arrays)
    self.width = int(np.shape(arrays["attention_mask"])[1]) if self.lengths is not None else 0
    self.grouping = grouping if self.lengths is not None else 0
    self.steps_per_epoch = math.ceil(self.n / global_batch_size)
    self._cache: dict[tuple, np.ndarray] = {}
    self.bucket_lengths = (self.width,)
    if buckets and self.lengths is not None:
      first_epoch = [self.lengths[r[r != FILL]].max() for r in map(self.global_rows, range(self.steps_per_epoch))]
      self.bucket_lengths = buckets_lib.choose(first_epoch, self.width, buckets, multiple)

  def _cached(self, key: tuple, make) -> np.ndarray:
    if key not in self._cache:
      if len(self._cache) > 4:
        self._cache.clear()
      self._cache[key] = make()
    return self._cache[key]

  def _permutation(self, epoch: int) -> np.ndarray:
    return self._cached(("permutation", epoch), lambda: np.random.default_rng([self.seed, epoch]).permutation(self.n))

  def _grouped_epoch(self, epoch: int) -> np.ndarray:
    """[steps_per_epoch, B] row indices of epoch `epoch`'s length-grouped batches (`FILL` pads the last)."""
    permutation, window = self._permutation(epoch), self.grouping * self.batch
    flat = []
    for start in range(0, self.n, window):
      rows = permutation[start : start + window]
      flat.append(rows[np.argsort(-self.lengths[rows], kind="stable")])
    flat = np.concatenate(flat)
    flat = np.concatenate([flat, np.full(self.steps_per_epoch * self.batch - self.n, FILL, flat.dtype)])
    epoch_batches = flat.reshape(self.steps_per_epoch, self.batch)
    return epoch_batches[np.random.default_rng([self.seed, epoch, 1]).permutation(self.steps_per_epoch)]

  def global_rows(self, step: int) -> np.ndarray:
    """Indices of every row of global batch `step` (`FILL` for a padding row)."""
    if self.grouping:
      epoch, index = divmod(step, self.steps_per_epoch)
      return self._cached(("grouped", epoch), lambda: self._grouped_epoch(epoch))[index]
    epochs, within = np.divmod(step * self.batch + np.arange(self.batch), self.n)
    return np.array([self._permutation(int(e))[i] for e, i in zip(epochs, within)], np.int64)

  def rows(self, step: int) -> np.ndarray:
    """Indices of this process's rows of global batch `step` (`FILL` for a padding row)."""
    return self.global_rows(step)[self.offset : self.offset + self.local]

  def __iter__(self):
    return self

  def __next__(self) -> dict:
    rows = self.global_rows(self.step)
    self.step += 1
    batch = _take(self.arrays, rows[self.offset : self.offset + self.local], weighted=bool(self.grouping))
    if self.lengths is None:
      return batch
    length = buckets_lib.fit(self.bucket_lengths, int(self.lengths[rows[rows != FILL]].max()))
    return buckets_lib.trim(batch, self.width, length)

  def get_state(self) -> dict:
    return {"step": self.step}

  def set_state(self, state: dict) -> None:
    self.step = int(state["step"])


def padded_batches(
  arrays: dict,
  batch_size: int,
  *,
  buckets: int = buckets_lib.DEFAULT_BUCKETS,
  multiple: int = buckets_lib.MULTIPLE,
  process_index: int = 0,
  process_count: int = 1,
) -> list[dict]:
  """Every row once, in order, in batches of `batch_size`; the last batch is padded with
  `weight` 0 rows (labels -100 for token labels), so no example is dropped or counted twice.

  Args:
    arrays: equal-length arrays ([rows, length] ones with an `attention_mask` can be bucketed).
    batch_size: rows per global batch.
    buckets: at most this many batch lengths (`buckets.choose` over these batches); 0 = full length.
    multiple: every bucket length below the full one is a multiple of it.
    process_index, process_count: this process's share of each global batch.

  Returns:
    This process's share of each global batch, each cut to its length bucket.
  """
  n = len(next(iter(arrays.values())))
  local = batch_size // process_count
  lengths = buckets_lib.row_lengths(arrays)
  starts = range(0, n, batch_size)
  bucket_lengths = None
  if lengths is not None:
    width = int(np.shape(arrays["attention_mask"])[1])
    maxima = [lengths[start : start + batch_size].max() for start in starts]
    bucket_lengths = buckets_lib.choose(maxima, width, buckets, multiple)
  batches = []
  for i, start in enumerate(starts):
    rows = np.arange(start, start + batch_size)
    batch = _take(arrays, np.where(rows < n, rows, FILL), weighted=True)
    if bucket_lengths is not None:
      batch = buckets_lib.trim(batch, width, buckets_lib.fit(bucket_lengths, int(maxima[i])))
    batches.append({k: v[process_index * local : (process_index + 1) * local] for k, v in batch.items()})
  return batches
