"""Batches of packed rows from a prepared directory, as a checkpointable grain pipeline.

The record order is grain's `records -> shuffle(seed) -> repeat -> [process_index::process_count]
-> batch(local_batch)`, element for element: epoch e is permuted by grain's `index_shuffle` with
seed `seed + e` (what `MapDataset.shuffle` does), so every epoch is reshuffled and the order is a
pure function of (seed, step). Slicing by process after shuffling makes the processes' local
batches of step k together exactly the global batch of step k that one process would read: the
data order does not depend on the number of hosts.

It is computed per batch, not per record: `grain.MapDataset.range(steps).map(read_batch)`, where
`read_batch` shuffles the batch's indices, reads each record with a seek+read on one ArrayRecord
reader per file, and decodes the batch with one `np.frombuffer`. Chaining grain's per-record
transformations over an `ArrayRecordDataSource` measured ~40 us a record here (2.6M tokens/s at
seq_len 128, one core); this path measured ~8 us (15M tokens/s).

A mixture (`mixture.py`) is read the same way. Every global batch has the same composition:
source i fills `mixture.batch_rows(weights, global_batch_size)[i]` rows (largest-remainder
rounding), and its rows of step s are positions [s*B_i, (s+1)*B_i) of its own endless stream,
shuffled and reshuffled each epoch as above (seed `seed + i * SOURCE_SEED_STRIDE + epoch`). The
global batch is source 0's rows, then source 1's, ...; each process then takes rows
`process_index::process_count` of it, so a mixture's order too is a pure function of (seed, step),
whatever the number of processes. This is chosen over grain's `MapDataset.mix`, which interleaves
record by record: it would run the slow per-record path above, and a batch's share of a source
would vary by a row from batch to batch, where here every batch holds exactly the same shares.

`iter(make_dataset(...))` is a `grain.DatasetIterator` with read-ahead threads: `get_state()`
returns a small dict to save in a checkpoint and `set_state(state)` resumes exactly.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import numpy as np

from jaxpretrain.data.pretrain import mixture
from jaxpretrain.data.pretrain.prepare import load_metadata
from jaxpretrain.errors import UserError

READ_THREADS = 2  # grain threads reading batches ahead of the consumer
PREFETCH_BATCHES = 4  # how many batches they keep ready
SOURCE_SEED_STRIDE = 0x9E3779B1  # source i of a mixture shuffles with seed + i * this (+ epoch)


def epoch_size(prepared_dir: str, split: str) -> int:
  """The number of records (rows) in a split.

  Args:
    prepared_dir: a directory `prepare` wrote.
    split: "train" or "eval".

  Returns:
    Records in the split.
  """
  return _split(load_metadata(prepared_dir), prepared_dir, split)["records"]


def _split(metadata: dict, prepared_dir: str, split: str) -> dict:
  if split not in metadata["splits"]:
    raise UserError(f"{prepared_dir} has no split {split!r} (it has {', '.join(metadata['splits'])})")
  return metadata["splits"][split]


class _Records:
  """The records of one prepared split, read at random through one ArrayRecord reader per file."""

  def __init__(self, paths: list[str], counts: list[int]):
    self.paths = paths
    self.offsets = np.cumsum([0] + counts)
    self.n = int(self.offsets[-1])
    self._readers = [None] * len(paths)
    self._lock = threading.Lock()

  def _reader(self, i: int):
    """The reader of file i and the lock that serializes its seek+read."""
    if self._readers[i] is None:
      from array_record.python import array_record_module

      with self._lock:
        if self._readers[i] is None:
          # max_parallelism:0 matters: with ArrayRecord's default thread pool one random read
          # takes ~1 ms instead of ~3 us (measured); no read-ahead for random access.
          reader = array_record_module.ArrayRecordReader(
            self.paths[i], options="readahead_buffer_size:0,max_parallelism:0", file_reader_buffer_size=4096
          )
          self._readers[i] = (reader, threading.Lock())
    return self._readers[i]

  def read(self, indices: np.ndarray) -> list[bytes]:
    """The records at `indices`, in that order."""
    files = np.searchsorted(self.offsets, indices, side="right") - 1
    positions = indices - self.offsets[files]
    records = []
    for f, position in zip(files.tolist(), positions.tolist()):
      reader, lock = self._reader(f)
      with lock:  # seek+read is one step of a stateful reader; grain reads from threads
        reader.seek(position)
        records.append(reader.read())
    return records


class _ReadBatch:
  """Step -> this process's batch `{"input_ids", "segment_ids"}` (see the module doc)."""

  def __init__(
    self,
    sources: list[_Records],
    rows: list[int],
    *,
    seq_len: int,
    seed: int,
    shuffle: bool,
    limits: list[int] | None,
    process_index: int,
    process_count: int,
  ):
    self.sources, self.rows, self.seq_len, self.seed, self.shuffle = sources, rows, seq_len, seed, shuffle
    self.limits, self.process_index, self.process_count = limits, process_index, process_count

  def source_rows(self, step: int) -> tuple[np.ndarray, np.ndarray]:
    """(source, record index in it) of each row of this process's batch `step`."""
    from grain.experimental import index_shuffle

    which, positions = [], []
    for i, rows in enumerate(self.rows):  # the global batch: each source's rows, source after source
      position = step * rows + np.arange(rows, dtype=np.int64)
      if self.limits is not None:
        position = position[position < self.limits[i]]
      which.append(np.full(len(position), i, np.int64))
      positions.append(position)
    which = np.concatenate(which)[self.process_index :: self.process_count]
    positions = np.concatenate(positions)[self.process_index :: self.process_count]
    sizes = np.array([s.n for s in self.sources], np.int64)
    epochs, in_epoch = np.divmod(positions, np.maximum(sizes[which], 1))
    if not self.shuffle:
      return which, in_epoch
    indices = [
      # Source 0's seeds are those of a single corpus; each source is shuffled independently.
      index_shuffle(
        int(j), max_index=int(sizes[i]) - 1, seed=(self.seed + SOURCE_SEED_STRIDE * i + e) % 2**32, rounds=4
      )
      for i, e, j in zip(which.tolist(), epochs.tolist(), in_epoch.tolist())
    ]
    return which, np.array(indices, np.int64)

  def record_indices(self, step: int) -> np.ndarray:
    """The record indices (each in its source) of this process's batch `step`."""
    return self.source_rows(step)[1]

  def __call__(self, step: int) -> dict[str, np.ndarray]:
    which, indices = self.source_rows(step)
    records = [b""] * len(indices)
    for i, source in enumerate(self.sources):
      at = np.flatnonzero(which == i)
      for k, record in zip(at.tolist(), source.read(indices[at])):
        records[k] = record
    rows = np.frombuffer(b"".join(records), np.int32).reshape(len(records), 2, self.seq_len)
    # Contiguous, writable arrays: consumers mask tokens in place and copy them to devices.
    return {"input_ids": np.ascontiguousarray(rows[:, 0]), "segment_ids": np.ascontiguousarray(rows[:, 1])}


def make_dataset(
  prepared_dir: str,
  split: str,
  *,
  global_batch_size: int,
  seed: int,
  shuffle: bool = True,
  repeat: bool = True,
  process_index: int = 0,
  process_count: int = 1,
  drop_remainder: bool = True,
):
  """A grain dataset of this process's batches of a prepared split (of one corpus or a mixture).

  Args:
    prepared_dir: a directory `prepare` (or `mixture.prepare`) wrote.
    split: "train" or "eval".
    global_batch_size: rows per step over all processes.
    seed: the shuffle seed; each epoch is reshuffled deterministically from it.
    shuffle: shuffle the records (else file order).
    repeat: repeat forever (else one pass).
    process_index: this process, in [0, process_count).
    process_count: processes sharing each global batch.
    drop_remainder: drop a last, smaller batch. Without repeat, the pass stops after the largest
      multiple of `global_batch_size` records of the (shuffled) order, so every process yields
      the same number of batches; for a mixture, when the first source runs out.

  Returns:
    A `grain.IterDataset`; `iter()` of it yields `{"input_ids", "segment_ids"}`, np.int32
    arrays [global_batch_size // process_count, seq_len], and supports get_state/set_state.
  """
  import grain

  read, steps = _batch_reader(
    prepared_dir,
    split,
    global_batch_size=global_batch_size,
    seed=seed,
    shuffle=shuffle,
    repeat=repeat,
    process_index=process_index,
    process_count=process_count,
    drop_remainder=drop_remainder,
  )
  ds = grain.MapDataset.range(steps).map(read)
  return ds.to_iter_dataset(grain.ReadOptions(num_threads=READ_THREADS, prefetch_buffer_size=PREFETCH_BATCHES))


def source_tokens(prepared_dir: str, *, global_batch_size: int, seed: int) -> Callable[[int], list[int]]:
  """Non-padding tokens each source contributes to a global training batch.

  Args:
    prepared_dir: a directory `prepare` (or `mixture.prepare`) wrote.
    global_batch_size: rows per step over all processes.
    seed: the shuffle seed of the run's training dataset.

  Returns:
    step -> [tokens of source i] for the global batch of that step of
    `make_dataset(prepared_dir, "train", shuffle=True, repeat=True, ...)` (its own readers: it
    re-reads that batch, so call it at logging steps, not every step).
  """
  read, _ = _batch_reader(
    prepared_dir, "train", global_batch_size=global_batch_size, seed=seed, shuffle=True, repeat=True
  )

  def tokens(step: int) -> list[int]:
    which, _ = read.source_rows(step)
    per_row = (read(step)["segment_ids"] > 0).sum(axis=1)
    return np.bincount(which, weights=per_row, minlength=len(read.rows)).astype(np.int64).tolist()

  return tokens


def _batch_reader(
  prepared_dir: str,
  split: str,
  *,
  global_batch_size: int,
  seed: int,
  shuffle: bool,
  repeat: bool,
  process_index: int = 0,
  process_count: int = 1,
  drop_remainder: bool = True,
) -> tuple[_ReadBatch, int]:
  """The `_ReadBatch` of `make_dataset` and its number of steps."""
  if global_batch_size < 1:
    raise UserError(f"batch size must be positive, got {global_batch_size}")
  if process_count < 1 or not 0 <= process_index < process_count:
    raise UserError(f"process_index {process_index} is not in [0, {process_count})")
  if global_batch_size % process_count:
    raise UserError(f"global batch size {global_batch_size} is not divisible by the {process_count} processes")
  metadata = load_metadata(prepared_dir)
  _split(metadata, prepared_dir, split)
  named = mixture.source_dirs(prepared_dir, metadata)
  rows = mixture.batch_rows([w for _, _, w in named], global_batch_size)
  sources = [_open_split(directory, split) for _, directory, _ in named]
  for (_, directory, _), source, r in zip(named, sources, rows):
    if r and source.n == 0:
      raise UserError(f"split {split!r} of {directory} is empty")
  if repeat:
    limits, steps = None, 2**62  # endless; an index, not an allocation
  else:
    limits = [s.n for s in sources]
    active = [(s.n, r, directory) for (_, directory, _), s, r in zip(named, sources, rows) if r]
    if drop_remainder:
      steps = min(n // r for n, r, _ in active)
      if steps == 0:
        n, r, directory = min(active, key=lambda a: a[0] // a[1])
        if len(named) == 1:
          raise UserError(f"split {split!r} has {n} records, fewer than one batch of {r}")
        raise UserError(f"split {split!r} of {directory} has {n} records, fewer than its {r} rows of one batch")
    else:
      # Rows of the global batch at each step; a process reads the steps where its slice is not empty.
      step = np.arange(max(-(-n // r) for n, r, _ in active), dtype=np.int64)
      count = sum(np.clip(n - step * r, 0, r) for n, r, _ in active)
      steps = int((count > process_index).sum())
  read = _ReadBatch(
    sources,
    rows,
    seq_len=metadata["seq_len"],
    seed=seed,
    shuffle=shuffle,
    limits=limits,
    process_index=process_index,
    process_count=process_count,
  )
  return read, steps


def _open_split(prepared_dir: str, split: str) -> _Records:
  """The records of a split of one prepared corpus, checked against its metadata."""
  info = _split(load_metadata(prepared_dir), prepared_dir, split)
  paths = [os.path.join(prepared_dir, name) for name in info["files"]]
  missing = [p for p in paths if not os.path.isfile(p)]
  if missing:
    raise UserError(f"{prepared_dir} is incomplete: {missing[0]} is missing; prepare it again")
  counts = info.get("file_records") or _count_records(paths)
  if sum(counts) != info["records"]:
    raise UserError(
      f"{prepared_dir} is inconsistent: its files hold {sum(counts)} records, metadata says {info['records']}; "
      f"prepare it again"
    )
  return _Records(paths, counts)


def _count_records(paths: list[str]) -> list[int]:
  from array_record.python import array_record_module

  counts = []
  for path in paths:
    reader = array_record_module.ArrayRecordReader(path, options="readahead_buffer_size:0")
    counts.append(reader.num_records())
    reader.close()
  return counts
