"""Data throughput: `prepare` tokens/s on 2 cores and loader tokens/s from shards on 1 core.

    python benchmarks/data_throughput.py [--documents=20000] [--seq_len=128] [--batch=32]

Targets (issue 7): prepare >= 1M tokens/s on 2 cores, loader >= 10M tokens/s on one core.
Each part runs in a child process pinned to its cores (os.sched_setaffinity), so the numbers do
not depend on the machine's other cores. `prepare` is timed end to end twice (from the embedded
generator, and from the same documents written to a text file, which is what a real corpus looks
like) and then stage by stage, to show where its time goes: generating or reading the source,
WordPiece encoding (tokenizers' Rust `encode_batch`), packing + ArrayRecord writing. Tokenizer training
(once per corpus) and the transformers import of the first tokenizer load (once per process) are
reported apart. Prints one JSON line per measurement, with
wall-clock tokens/s and tokens per CPU-second of the process (user + system time of all its
threads): on a shared machine the wall clock also measures the neighbours, CPU time much less.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _emit(**row):
  print(json.dumps(row), flush=True)


class _Timer:
  """Wall-clock and process CPU seconds of a `with` block."""

  def __enter__(self):
    self._wall, self._cpu = time.perf_counter(), time.process_time()
    return self

  def __exit__(self, *exc):
    self.wall, self.cpu = time.perf_counter() - self._wall, time.process_time() - self._cpu


def _rates(tokens: int, timer: _Timer) -> dict:
  return {
    "tokens": tokens,
    "seconds": round(timer.wall, 3),
    "cpu_seconds": round(timer.cpu, 3),
    "tokens_per_s": round(tokens / max(timer.wall, 1e-9)),
    "tokens_per_cpu_s": round(tokens / max(timer.cpu, 1e-9)),
  }


def measure_prepare(args, work: str) -> None:
  """End-to-end and per-stage prepare throughput (runs on the cores this process is pinned to)."""
  from jaxpretrain.data.pretrain import prepare as prepare_lib
  from jaxpretrain.data.readers import text as sources
  from jaxpretrain.data.tokenizer import Tokenizer

  cores = len(os.sched_getaffinity(0))
  with _Timer() as generate:
    docs = list(sources.iter_documents("embedded", embedded_documents=args.documents, seed=0))
  corpus = os.path.join(work, "corpus.txt")
  with open(corpus, "w") as f:  # one document per paragraph, as a plain-text corpus
    f.write("\n\n".join(d.replace("\n", " ") for d in docs) + "\n")
  sample = docs[: prepare_lib.TOKENIZER_SAMPLE_DOCUMENTS]
  with _Timer() as train:
    tokenizer = Tokenizer.train_wordpiece(sample, args.vocab)
  _emit(
    measure="tokenizer_training",
    documents=len(sample),
    seconds=round(train.wall, 2),
    cpu_seconds=round(train.cpu, 2),
    note="one-off per corpus; not in the tokens/s below",
  )
  tok_dir = os.path.join(work, "tokenizer")
  tokenizer.save(tok_dir)

  with _Timer() as read:
    read_docs = list(sources.iter_documents(corpus))
  encoded = []
  with _Timer() as encode:
    for i in range(0, len(read_docs), prepare_lib.DOCS_PER_BLOCK):
      encoded.extend(tokenizer.encode_batch(read_docs[i : i + prepare_lib.DOCS_PER_BLOCK]))
  tokens = sum(len(t) for t in encoded)
  # Packing + ArrayRecord writing with prepare's own (private) packer and writer.
  os.makedirs(os.path.join(work, "pack-bench"), exist_ok=True)
  writer = prepare_lib._ShardWriter(os.path.join(work, "pack-bench"), "train", 100_000)
  ids = tokenizer.special_ids
  packer = prepare_lib.PACKERS["bert"](args.seq_len, ids["cls"], ids["sep"], ids["pad"], writer)
  with _Timer() as pack:
    for t in encoded:
      packer.add(t)
    packer.flush()
    writer.close()
  for name, timer in (
    ("generate_embedded", generate),
    ("read_text_file", read),
    ("encode", encode),
    ("pack_and_write", pack),
  ):
    _emit(measure=f"prepare_stage:{name}", cores=cores, **_rates(tokens, timer))

  # Loading a tokenizer imports transformers (and with it torch, when installed): seconds once per
  # process, whatever the corpus size, so it is timed apart rather than charged to the first run.
  with _Timer() as imports:
    Tokenizer.load(tok_dir)
  _emit(
    measure="one_off_imports",
    seconds=round(imports.wall, 2),
    cpu_seconds=round(imports.cpu, 2),
    note="transformers (+ torch) import on the first Tokenizer.load; not in the tokens/s below",
  )
  for spec in ("embedded", corpus):
    out = os.path.join(work, "prepared-" + ("embedded" if spec == "embedded" else "file"))
    with _Timer() as end_to_end:
      meta = prepare_lib.prepare(
        spec,
        out,
        seq_len=args.seq_len,
        vocab_size=args.vocab,
        tokenizer_dir=tok_dir,
        embedded_documents=args.documents,
        records_per_shard=100_000,
      )
    split_tokens = sum(s["tokens"] for s in meta["splits"].values())
    _emit(
      measure="prepare_end_to_end",
      source="embedded generator" if spec == "embedded" else "text file",
      cores=cores,
      documents=len(docs),
      target=1_000_000,
      **_rates(split_tokens, end_to_end),
    )


def measure_loader(args, work: str) -> None:
  """Batches/s of the grain loader over the prepared shards (the training split, shuffled)."""
  from jaxpretrain.data.pretrain import loader

  out = os.path.join(work, "prepared-file")
  it = iter(loader.make_dataset(out, "train", global_batch_size=args.batch, seed=0, shuffle=True, repeat=True))
  for _ in range(50):
    next(it)
  with _Timer() as timer:
    for _ in range(args.loader_steps):
      batch = next(it)
  _emit(
    measure="loader",
    cores=len(os.sched_getaffinity(0)),
    batch=args.batch,
    seq_len=args.seq_len,
    steps=args.loader_steps,
    target=10_000_000,
    **_rates(args.loader_steps * batch["input_ids"].size, timer),
  )


def _child(part: str, cores: set[int], argv: list[str]) -> int:
  """Runs `part` in a child process pinned to `cores`."""
  return subprocess.call(
    [sys.executable, __file__, f"--part={part}", *argv], preexec_fn=lambda: os.sched_setaffinity(0, cores)
  )


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--documents", type=int, default=20000, help="embedded documents (configs/tiny.py: 20000)")
  parser.add_argument("--seq_len", type=int, default=128)
  parser.add_argument("--vocab", type=int, default=4096)
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--loader_steps", type=int, default=3000)
  parser.add_argument("--dir", default="", help="work directory (default: a fresh temporary one)")
  parser.add_argument("--part", default="all", choices=["all", "prepare", "loader"])
  args, _ = parser.parse_known_args()
  if args.part == "prepare":
    measure_prepare(args, args.dir)
    return 0
  if args.part == "loader":
    measure_loader(args, args.dir)
    return 0
  available = sorted(os.sched_getaffinity(0))
  with tempfile.TemporaryDirectory() as tmp:
    work = args.dir or tmp
    os.makedirs(work, exist_ok=True)
    argv = [a for a in sys.argv[1:] if not a.startswith(("--part", "--dir"))] + [f"--dir={work}"]
    _emit(measure="machine", cpus=len(available), python=sys.version.split()[0])
    code = _child("prepare", set(available[:2]), argv)
    return code or _child("loader", {available[0]}, argv)


if __name__ == "__main__":
  sys.exit(main())
