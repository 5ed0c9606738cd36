"""Length buckets: each fine-tuning batch padded to the shortest of a few fixed lengths its rows fit.

Fine-tuning rows are right-padded to `data.seq_len`, but most real texts are shorter: a batch only
needs the length of its longest row. Every distinct batch shape compiles the step once (jit and
pmap cache per shape), so the lengths are drawn from a fixed grid of multiples of 8 (8, 16, 24,
32, 48, 64, 96, 128, ...: each at most 1.5x the one before, from 16 on), and at most
`data.length_buckets` of them are used. They are chosen from the batches themselves: the set of
grid lengths that wastes the fewest padded tokens over one epoch's batches (dynamic programming
over the grid), its longest the first grid length that fits every row. Trimming padding changes
nothing but the work: padded keys are masked out of attention, padded positions out of every loss,
so a trimmed batch computes the same sums as the full one, up to float rounding.

`data.length_grouping` goes further, as HF's `group_by_length`: within windows of that many
shuffled training batches, rows are sorted by length before they are cut into batches, so a batch
holds rows of similar length (see `batches.LabeledBatches`).
"""

from __future__ import annotations

import math

import numpy as np

from jaxpretrain.errors import warn

MULTIPLE = 8  # bucket lengths are multiples of this (below data.seq_len), for vector units and length sharding
DEFAULT_BUCKETS = 4  # = config.defaults().data.length_buckets (tests/finetune/test_bucketing.py checks)
DEFAULT_GROUPING = 50  # = config.defaults().data.length_grouping (HF group_by_length's megabatches: 50 batches)


def row_lengths(arrays: dict) -> np.ndarray | None:
  """Each row's length up to its last real token (`attention_mask`); None without a [rows, length] mask."""
  mask = arrays.get("attention_mask")
  if mask is None or np.ndim(mask) != 2:
    return None
  real = np.asarray(mask) != 0
  return np.where(real.any(1), real.shape[1] - np.argmax(real[:, ::-1], axis=1), 1).astype(np.int64)


def grid(width: int, multiple: int = MULTIPLE) -> np.ndarray:
  """The candidate lengths below `width` (multiples of `multiple` on the 8·2^k, 12·2^k grid), then `width`."""
  points = set()
  for length in (8, 24):  # 8, 16, 32, ... and 24, 48, 96, ...
    while length < width:
      if length % multiple == 0:
        points.add(length)
      length *= 2
  return np.array(sorted(points) + [width], np.int64)


def choose(maxima, width: int, count: int, multiple: int = MULTIPLE) -> tuple[int, ...]:
  """At most `count` grid lengths that pad the batches whose longest rows are `maxima` least.

  Args:
    maxima: the longest row of each batch (e.g. one epoch's batches); the largest must fit in `width`.
    width: the rows' full length (`data.seq_len`).
    count: how many lengths at most; 0 = bucketing off.
    multiple: every length below `width` is a multiple of it.

  Returns:
    Increasing lengths; the last fits every batch. `(width,)` when `count` is 0 or there are no batches.
  """
  maxima = np.asarray(maxima, np.int64)
  if count <= 0 or maxima.size == 0:
    return (int(width),)
  points = grid(width, multiple)
  points = points[: int(np.searchsorted(points, maxima.max())) + 1]  # the first that fits every batch ends it
  batches = np.bincount(np.searchsorted(points, maxima), minlength=len(points))
  below = np.concatenate([[0], np.cumsum(batches)])  # below[j]: batches fitting points[j-1] or less
  n = len(points)
  # cost[k][j]: padded length summed over the batches fitting points[j], with k lengths, the largest points[j].
  cost = np.full((count + 1, n), np.inf)
  previous = np.full((count + 1, n), -1, np.int64)
  cost[1] = points * below[1:]
  for k in range(2, count + 1):
    for j in range(n):
      for i in range(j):
        c = cost[k - 1][i] + points[j] * (below[j + 1] - below[i + 1])
        if c < cost[k][j]:
          cost[k][j], previous[k][j] = c, i
  best = min(range(1, count + 1), key=lambda k: (cost[k][n - 1], k))  # ties: fewer lengths, fewer compilations
  chosen, j, k = [], n - 1, best
  while j >= 0 and k >= 1:
    chosen.append(int(points[j]))
    j, k = previous[k][j], k - 1
  return tuple(sorted(chosen))


def fit(lengths: tuple[int, ...], longest: int) -> int:
  """The shortest of `lengths` (increasing) that holds a row of `longest` tokens."""
  return lengths[min(int(np.searchsorted(lengths, longest)), len(lengths) - 1)]


def trim(batch: dict, width: int, length: int) -> dict:
  """`batch` with every [rows, width] array cut to [rows, length] (right padding dropped)."""
  if length == width:
    return batch
  return {k: v[:, :length] if np.ndim(v) >= 2 and np.shape(v)[1] == width else v for k, v in batch.items()}


def length_multiple(mesh_config, num_devices: int) -> int:
  """`MULTIPLE`, or a multiple of it that the mesh axes `mesh.rules` shards `act_length` over divide."""
  from jaxpretrain.parallel import mesh as mesh_lib
  from jaxpretrain.parallel import rules as rules_lib

  axes = dict(rules_lib.rules_from_config(mesh_config)).get("act_length")
  axes = () if axes is None else (axes,) if isinstance(axes, str) else tuple(axes)
  if mesh_config.strategy != "jit" or not axes:
    return MULTIPLE
  sizes = dict(zip(mesh_lib.AXES, mesh_lib.mesh_shape(mesh_config, num_devices)))
  return math.lcm(MULTIPLE, math.prod(sizes[a] for a in axes))


def note(lengths: dict[str, tuple[int, ...]], width: int) -> None:
  """Says once which batch lengths the run's splits use (each compiles its step once)."""
  if all(v == (width,) for v in lengths.values()):
    return
  listed = "; ".join(f"{split} {', '.join(map(str, v))}" for split, v in lengths.items())
  warn(f"length buckets (tokens per row; each compiles once): {listed} (data.seq_len={width})", kind="note")
