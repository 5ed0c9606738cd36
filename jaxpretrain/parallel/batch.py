"""Which rows of the global batch a process holds: the `example_index` every strategy adds.

Tasks draw per-example randomness (MLM masks, dropout keys) from `batch["example_index"]`, each
row's index in the global batch. The data loaders give process p of P the rows p, p+P, p+2P, ...
of every global batch (`[p::P]`, see `data/pretrain/loader.py`), so the index of local row i is p + P*i,
wherever the strategy then places that row on devices. With it, a step computes the same loss on
1 device, on a mesh, under pmap and on several hosts.
"""

from __future__ import annotations

import jax
import numpy as np


def example_index(local_rows: int, process_index: int | None = None, process_count: int | None = None) -> np.ndarray:
  """The global-batch index of each of this process's rows.

  Args:
    local_rows: rows in this process's share of the batch.
    process_index: this process (default `jax.process_index()`).
    process_count: processes sharing the batch (default `jax.process_count()`).

  Returns:
    int32 [local_rows].
  """
  p = jax.process_index() if process_index is None else process_index
  count = jax.process_count() if process_count is None else process_count
  return (p + count * np.arange(local_rows)).astype(np.int32)


def add_global_example_index(host_batch: dict) -> dict:
  """`host_batch` (process-local numpy arrays) with `example_index` added unless present."""
  if "example_index" in host_batch:
    return host_batch
  rows = len(next(iter(host_batch.values())))
  return dict(host_batch, example_index=example_index(rows))
