"""Batches of in-memory arrays: `LabeledBatches` for training (endless, checkpointable by step) and
`padded_batches` for evaluation (every row once)."""

from __future__ import annotations

import numpy as np

from jaxpretrain.data.finetune.features import IGNORE


class LabeledBatches:
  """Endless batches of in-memory arrays, reshuffled every epoch; checkpointable by step.

  Global batch k holds rows k*B .. k*B+B-1 of the concatenation of epoch permutations (epoch e
  permuted by a generator seeded with (seed, e)); this process takes its contiguous slice.
  """

  def __init__(
    self, arrays: dict, global_batch_size: int, seed: int, *, process_index: int = 0, process_count: int = 1
  ):
    self.arrays, self.batch, self.seed = arrays, global_batch_size, seed
    self.n = len(next(iter(arrays.values())))
    self.local = global_batch_size // process_count
    self.offset = process_index * self.local
    self.step = 0
    self._permutations: dict[int, np.ndarray] = {}

  def _permutation(self, epoch: int) -> np.ndarray:
    if epoch not in self._permutations:
      if len(self._permutations) > 4:
        self._permutations.clear()
      self._permutations[epoch] = np.random.default_rng([self.seed, epoch]).permutation(self.n)
    return self._permutations[epoch]

  def rows(self, step: int) -> np.ndarray:
    """Indices of this process's rows of global batch `step`."""
    positions = step * self.batch + self.offset + np.arange(self.local)
    epochs, within = np.divmod(positions, self.n)
    return np.array([self._permutation(int(e))[i] for e, i in zip(epochs, within)], np.int64)

  def __iter__(self):
    return self

  def __next__(self) -> dict:
    rows = self.rows(self.step)
    self.step += 1
    return {k: v[rows] for k, v in self.arrays.items()}

  def get_state(self) -> dict:
    return {"step": self.step}

  def set_state(self, state: dict) -> None:
    self.step = int(state["step"])


def padded_batches(arrays: dict, batch_size: int, *, process_index: int = 0, process_count: int = 1) -> list[dict]:
  """Every row once, in order, in batches of `batch_size`; the last batch is padded with
  `weight` 0 rows (labels -100 for token labels), so no example is dropped or counted twice.

  Returns:
    This process's share of each global batch.
  """
  n = len(next(iter(arrays.values())))
  local = batch_size // process_count
  batches = []
  for start in range(0, n, batch_size):
    rows = np.arange(start, start + batch_size)
    real = rows < n
    batch = {k: v[np.minimum(rows, n - 1)].copy() for k, v in arrays.items()}
    if "labels" in batch:
      batch["labels"][~real] = IGNORE
    batch["weight"] = real.astype(np.float32)
    batches.append({k: v[process_index * local : (process_index + 1) * local] for k, v in batch.items()})
  return batches
