"""Throughput of `prepare` and of the loader: `python -m jaxpretrain.data.bench [OUT_DIR]`.

Prints wall-clock tokens/s and tokens per CPU-second of this process (user + system time of all
its threads): on a shared machine the wall clock measures the neighbours too, CPU time much less.
The loader is timed on the calling thread with read-ahead off, i.e. on one core.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from jaxpretrain.data import loader, prepare


def _clock():
  return time.perf_counter(), time.process_time()


def bench_prepare(out_dir: str, documents: int, seq_len: int, vocab_size: int) -> dict:
  """Prepares the embedded corpus; returns tokens/s (wall and per CPU-second)."""
  wall, cpu = _clock()
  metadata = prepare.prepare("embedded", out_dir, seq_len=seq_len, vocab_size=vocab_size,
                             embedded_documents=documents)
  wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
  tokens = sum(s["tokens"] for s in metadata["splits"].values())
  with open(os.path.join(out_dir, "parts", "part-00000-of-00001.json")) as f:
    part = json.load(f)  # the tokenize-pack-write pass alone, without tokenizer training
  return {"documents": documents, "tokens": tokens, "seconds": round(wall, 2),
          "tokens_per_s": round(tokens / wall), "tokens_per_cpu_s": round(tokens / cpu),
          "pack_pass_tokens_per_s": part["tokens_per_second"]}


def bench_loader(prepared_dir: str, batch_size: int, batches: int) -> dict:
  """Reads shuffled batches in the calling thread; returns tokens/s (wall and per CPU-second)."""
  ds = loader.make_dataset(prepared_dir, "train", global_batch_size=batch_size, seed=0)
  read = ds._parent  # pylint: disable=protected-access  (the MapDataset under the prefetch)
  read[0]  # open the readers
  wall, cpu = _clock()
  tokens = sum(read[step]["input_ids"].size for step in range(1, batches + 1))
  wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
  return {"batch_size": batch_size, "batches": batches, "tokens_per_s": round(tokens / wall),
          "tokens_per_cpu_s": round(tokens / cpu)}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("out_dir", nargs="?", default="")
  parser.add_argument("--documents", type=int, default=40000)
  parser.add_argument("--seq-len", type=int, default=128)
  parser.add_argument("--vocab-size", type=int, default=4096)
  parser.add_argument("--batch-size", type=int, default=256)
  parser.add_argument("--batches", type=int, default=200)
  args = parser.parse_args()
  out_dir = args.out_dir or os.path.join(tempfile.mkdtemp(), "prepared")
  result = {"load_average": os.getloadavg()[0], "cpus": os.cpu_count(),
            "prepare": bench_prepare(out_dir, args.documents, args.seq_len, args.vocab_size),
            "loader": bench_loader(out_dir, args.batch_size, args.batches)}
  print(json.dumps(result))


if __name__ == "__main__":
  main()
