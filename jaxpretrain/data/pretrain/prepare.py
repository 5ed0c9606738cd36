"""`prepare`: corpus -> tokenizer -> packed fixed-length rows in ArrayRecord shards + metadata.

Layout of a prepared directory:
  tokenizer/                                 a HF tokenizer directory
  train-{worker:05d}-{k:05d}.array_record    records of the training split
  eval-{worker:05d}-{k:05d}.array_record     records of the held-out split
  parts/part-{worker:05d}-of-{n:05d}.json    what each worker wrote
  metadata.json                              written last, atomically, once every part exists

A weighted mixture of sources (`data.train="A@0.7,B@0.3"`) is one such directory per source under
`sources/`, sharing one tokenizer, with a metadata.json of its own (`mixture.py`).

A record is one row of exactly `seq_len` tokens, stored as raw bytes: `input_ids` (int32) then
`segment_ids` (int32). Rows are packed like RoBERTa's FULL-SENTENCES: `[CLS]`, then consecutive
documents, each piece followed by `[SEP]`; a document that does not fit continues in the next row
(which starts with `[CLS]` again). Segment ids number the pieces of a row 1, 2, 3, ... ([CLS]
belongs to piece 1, each [SEP] to its piece), and padding is 0. That is `packing="bert"`;
`packing="gpt"` (causal LM) packs each document as `[BOS] doc [EOS]` (the tokenizer's cls/sep:
[CLS]/[SEP] for WordPiece, <|endoftext|> for GPT-2) back to back, every piece its own segment
(`packing.py`).

Workers: documents are cut into blocks of `DOCS_PER_BLOCK` consecutive documents, block b belongs
to worker `b % num_shards`, and packing restarts at every block (its last row is padded). So the
records are the same, as a multiset, whatever the number of workers: a dataset does not depend on
how it was prepared. A document is held out for eval when a hash of (index, seed) falls below
`eval_fraction`. A worker writes into a private temporary directory and moves its files in only
after it succeeded, so a failing run never damages a complete prepared directory; `metadata.json` is only ever
written whole (tmp + rename).
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator

from jaxpretrain import paths
from jaxpretrain.data.common import held_out, read_ahead
from jaxpretrain.data.pretrain.packing import PACKERS, Packer
from jaxpretrain.data.readers.text import iter_documents
from jaxpretrain.data.tokenizer import Tokenizer
from jaxpretrain.errors import UserError, storage_errors

FORMAT_VERSION = 1
SPLITS = ("train", "eval")
# Grain reads records at random, which needs one record per chunk; uncompressed reads fastest.
WRITER_OPTIONS = "group_size:1,uncompressed"
TOKENIZER_SAMPLE_DOCUMENTS = 20000
TOKENIZER_SAMPLE_CHARS = 50_000_000
DOCS_PER_BLOCK = 1000  # also the batch of one `encode_batch` call


def prepare(
  spec: str,
  out_dir: str,
  *,
  seq_len: int,
  vocab_size: int,
  tokenizer_dir: str = "",
  eval_fraction: float = 0.01,
  embedded_documents: int = 40000,
  records_per_shard: int = 10000,
  shard_index: int = 0,
  num_shards: int = 1,
  seed: int = 0,
  progress: bool = False,
  packing: str = "bert",
  tokenizer_type: str = "wordpiece",
  text_column: str = "",
) -> dict:
  """Tokenizes and packs a corpus (or this worker's share of it) into `out_dir`.

  Args:
    spec: the corpus (see `readers.text.iter_documents`).
    out_dir: the prepared directory.
    seq_len: tokens per row.
    vocab_size: vocabulary size when a tokenizer is trained here.
    tokenizer_dir: a HF tokenizer directory to use instead of training one.
    eval_fraction: share of documents held out for eval.
    embedded_documents: size of the `embedded` corpus.
    records_per_shard: records per ArrayRecord file.
    shard_index: this worker, in [0, num_shards).
    num_shards: how many workers prepare the corpus together (each calls `prepare`).
    seed: picks the held-out documents (and the `embedded` corpus's stream).
    progress: show a progress bar on stderr.
    packing: "bert" (MLM rows) or "gpt" (causal-LM rows); see the module doc.
    tokenizer_type: the tokenizer trained without `tokenizer_dir` (`Tokenizer.train`'s kind).
    text_column: the record field holding the text ("" = guessed; see `iter_documents`).

  Returns:
    The merged metadata once every worker's part exists (`metadata.json`), else this worker's
    part (it has `"complete": False`).
  """
  _check_args(seq_len, vocab_size, tokenizer_dir, eval_fraction, records_per_shard, shard_index, num_shards)
  options = _options(
    spec,
    seq_len,
    vocab_size,
    tokenizer_dir,
    eval_fraction,
    seed,
    num_shards,
    embedded_documents,
    packing,
    tokenizer_type,
    text_column,
  )
  if packing not in PACKERS:
    raise UserError(f"data.packing={packing!r}; choose {' or '.join(PACKERS)}")

  def docs():
    return iter_documents(spec, embedded_documents=embedded_documents, seed=seed, text_column=text_column)

  documents = docs()  # bad paths and unknown datasets fail here, before any work
  with storage_errors(f"preparing data in {out_dir}"):
    claim_directory(out_dir)
    work = os.path.join(out_dir, f".tmp-part-{shard_index:05d}-of-{num_shards:05d}")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    try:
      if tokenizer_dir:
        tokenizer = Tokenizer.load(tokenizer_dir)
      else:
        sample = _tokenizer_sample(documents, seed, eval_fraction)
        if not sample:
          raise UserError(f"no documents in {spec}")
        tokenizer = train_tokenizer(sample, vocab_size, progress=progress, kind=tokenizer_type)
        del sample
        documents = docs()
      tokenizer.save(os.path.join(work, "tokenizer"))
      part = _write_records(
        documents,
        work,
        tokenizer,
        seq_len=seq_len,
        eval_fraction=eval_fraction,
        records_per_shard=records_per_shard,
        shard_index=shard_index,
        num_shards=num_shards,
        seed=seed,
        spec=spec,
        progress=progress,
        packer_class=PACKERS[packing],
      )
      part.update(
        options=options,
        config_key=_config_key(options),
        tokenizer_fingerprint=tokenizer.fingerprint(),
        vocab_size=tokenizer.vocab_size,
        special_ids=tokenizer.special_ids,
        shard_index=shard_index,
        complete=False,
      )
      _commit(work, out_dir, part, tokenizer)
    finally:
      shutil.rmtree(work, ignore_errors=True)
    merged = _try_merge(out_dir, part)
    return merged if merged is not None else part


def _options(
  spec,
  seq_len,
  vocab_size,
  tokenizer_dir,
  eval_fraction,
  seed,
  num_shards,
  embedded_documents,
  packing,
  tokenizer_type="wordpiece",
  text_column="",
):
  """What makes a prepared directory what it is (saved in its metadata; its hash keys the workers' parts)."""
  return {
    "spec": spec,
    "seq_len": seq_len,
    "vocab_size": vocab_size,
    "tokenizer_dir": os.path.abspath(tokenizer_dir) if tokenizer_dir else "",
    "eval_fraction": eval_fraction,
    "seed": seed,
    "num_shards": num_shards,
    "embedded_documents": embedded_documents if spec == "embedded" else None,
    "docs_per_block": DOCS_PER_BLOCK,
    "format_version": FORMAT_VERSION,
    "packing": packing,
    "tokenizer_type": tokenizer_type,  # a prepared directory of another type is not reused silently
    "text_column": text_column,
  }


def train_tokenizer(
  sample: list[str], vocab_size: int, *, progress: bool = False, kind: str = "wordpiece"
) -> Tokenizer:
  """The tokenizer `prepare` trains (for one corpus, or shared by a mixture's sources).

  Args:
    sample: the training documents to learn the vocabulary from.
    vocab_size: the vocabulary size.
    progress: say so on stderr.
    kind: the tokenizer type (`Tokenizer.train`'s kind: wordpiece, bpe or unigram).

  Returns:
    The trained tokenizer.
  """
  if progress:
    print(f"prepare: training a {vocab_size}-token {kind} on {len(sample)} documents", file=sys.stderr, flush=True)
  tokenizer = Tokenizer.train(kind, sample, vocab_size)
  return tokenizer


def _check_args(seq_len, vocab_size, tokenizer_dir, eval_fraction, records_per_shard, shard_index, num_shards):
  if seq_len < 8:
    raise UserError(f"data.seq_len must be at least 8, got {seq_len}")
  if not tokenizer_dir and vocab_size < 16:
    raise UserError(f"vocab_size must be at least 16 to train a tokenizer, got {vocab_size}")
  if not 0 <= eval_fraction < 1:
    raise UserError(f"data.eval_fraction must be in [0, 1), got {eval_fraction}")
  if records_per_shard < 1:
    raise UserError(f"data.records_per_shard must be positive, got {records_per_shard}")
  if num_shards < 1 or not 0 <= shard_index < num_shards:
    raise UserError(f"shard_index {shard_index} is not in [0, num_shards={num_shards})")


def _tokenizer_sample(
  documents: Iterator[str], seed: int, eval_fraction: float, *, max_documents: int = 0, max_chars: int = 0
) -> list[str]:
  """The first training documents of the whole corpus (every worker takes the same ones), up to
  `max_documents` / `max_chars` (0: `TOKENIZER_SAMPLE_DOCUMENTS` / `TOKENIZER_SAMPLE_CHARS`)."""
  max_documents = max_documents or TOKENIZER_SAMPLE_DOCUMENTS
  max_chars = max_chars or TOKENIZER_SAMPLE_CHARS
  sample, chars = [], 0
  for d, text in enumerate(documents):
    if held_out(d, seed, eval_fraction):
      continue
    sample.append(text)
    chars += len(text)
    if len(sample) >= max_documents or chars >= max_chars:
      break
  return sample


class _ShardWriter:
  """Writes records to `{split}-{worker}-{k}.array_record`, a new file every `per_file` records."""

  def __init__(self, directory: str, prefix: str, per_file: int):
    self.directory, self.prefix, self.per_file = directory, prefix, per_file
    self.files, self.file_records, self.records = [], [], 0
    self._writer, self._in_file = None, 0

  def write(self, record: bytes):
    from array_record.python import array_record_module

    if self._writer is None:
      name = f"{self.prefix}-{len(self.files):05d}.array_record"
      self.files.append(name)
      self.file_records.append(0)
      self._writer = array_record_module.ArrayRecordWriter(os.path.join(self.directory, name), WRITER_OPTIONS)
    self._writer.write(record)
    self.records += 1
    self.file_records[-1] += 1
    self._in_file += 1
    if self._in_file == self.per_file:
      self.close()

  def close(self):
    if self._writer is not None:
      self._writer.close()
      self._writer, self._in_file = None, 0


def _write_records(
  documents,
  work,
  tokenizer,
  *,
  seq_len,
  eval_fraction,
  records_per_shard,
  shard_index,
  num_shards,
  seed,
  spec,
  progress,
  packer_class=None,
) -> dict:
  ids = tokenizer.special_ids
  if ids["cls"] is None or ids["sep"] is None or ids["pad"] is None:
    raise UserError("the tokenizer has no [CLS]/[SEP]/[PAD] (nor an eos to stand in for them)")
  writers = {s: _ShardWriter(work, f"{s}-{shard_index:05d}", records_per_shard) for s in SPLITS}
  packer_class = packer_class or Packer
  packers = {s: packer_class(seq_len, ids["cls"], ids["sep"], ids["pad"], writers[s]) for s in SPLITS}
  counts = {s: {"documents": 0, "tokens": 0} for s in SPLITS}
  bar = _progress_bar(progress, shard_index, num_shards)
  start_time, seen = time.time(), 0
  batch_splits, batch_texts = [], []

  def finish_block():
    for split, tokens in zip(batch_splits, tokenizer.encode_batch(batch_texts)):
      if tokens:
        counts[split]["documents"] += 1
        counts[split]["tokens"] += len(tokens)
        packers[split].add(tokens)
    for packer in packers.values():
      packer.flush()
    if bar is not None:
      bar.update(len(batch_texts))
    batch_splits.clear()
    batch_texts.clear()

  try:
    block = 0
    for d, text in enumerate(read_ahead(documents, 2 * DOCS_PER_BLOCK)):
      seen += 1
      if d // DOCS_PER_BLOCK != block:
        if batch_texts:
          finish_block()
        block = d // DOCS_PER_BLOCK
      if block % num_shards != shard_index:
        continue
      batch_splits.append("eval" if held_out(d, seed, eval_fraction) else "train")
      batch_texts.append(text)
    if seen == 0:
      raise UserError(f"no documents in {spec}")
    if batch_texts:
      finish_block()
  finally:  # also on an error, so the bar does not print after the error line
    if bar is not None:
      bar.close()
  for s in SPLITS:
    writers[s].close()
  seconds = time.time() - start_time
  splits = {
    s: dict(counts[s], records=writers[s].records, files=writers[s].files, file_records=writers[s].file_records)
    for s in SPLITS
  }
  tokens = sum(c["tokens"] for c in counts.values())
  return {
    "format_version": FORMAT_VERSION,
    "seq_len": seq_len,
    "source": spec,
    "num_shards": num_shards,
    "corpus_documents": seen,
    "splits": splits,
    "seconds": round(seconds, 3),
    "tokens_per_second": round(tokens / max(seconds, 1e-9)),
  }


def _progress_bar(progress: bool, shard_index: int, num_shards: int):
  if not progress:
    return None
  from tqdm import tqdm

  desc = "prepare" if num_shards == 1 else f"prepare {shard_index}/{num_shards}"
  return tqdm(desc=desc, unit=" docs", file=sys.stderr, dynamic_ncols=True)


def _config_key(options: dict) -> str:
  return hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:16]


def _write_json(path: str, data: dict):
  """Writes whole or not at all: a unique tmp file, then an atomic rename."""
  tmp = f"{path}.tmp-{os.getpid()}"
  with open(tmp, "w") as f:
    json.dump(data, f, indent=2, sort_keys=True)
  os.replace(tmp, path)


OWNER_MARKER = ".jaxpretrain-prepared"


def claim_directory(out_dir: str) -> None:
  """Makes `out_dir` a prepared-data directory, or refuses a directory jaxpretrain did not make.

  Prepare replaces shards, parts and the tokenizer by name and deletes stale ones, which in a
  user's own directory would destroy their files. So it works only in a new or empty directory
  (which it marks with `OWNER_MARKER` before writing anything else) or in one it made before
  (the marker, or the `metadata.json` / `parts/` of a directory prepared by an older version).

  Args:
    out_dir: `data.prepared_dir` (default WORKDIR/data).
  """
  if os.path.exists(out_dir) and not os.path.isdir(out_dir):
    raise UserError(f"data.prepared_dir={out_dir} is a file, not a directory")
  try:
    entries = set(os.listdir(out_dir)) if os.path.isdir(out_dir) else set()
  except OSError as e:
    raise UserError(f"data.prepared_dir={out_dir} cannot be read: {e.strerror or e}") from None
  ours = OWNER_MARKER in entries or "metadata.json" in entries or "parts" in entries
  if entries and not ours:
    raise UserError(
      f"data.prepared_dir={out_dir} is a non-empty directory that jaxpretrain did not prepare "
      f"(no {OWNER_MARKER}); give a new or empty directory"
    )
  try:
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, OWNER_MARKER), "a", encoding="utf-8"):
      pass
  except OSError as e:
    raise UserError(f"data.prepared_dir={out_dir} is not writable: {e.strerror or e}") from None


def _commit(work: str, out_dir: str, part: dict, tokenizer: Tokenizer):
  """Moves a finished worker's files into `out_dir`; the old dataset stops being 'prepared'."""
  shard_index, num_shards = part["shard_index"], part["num_shards"]
  metadata = os.path.join(out_dir, "metadata.json")
  if os.path.exists(metadata):
    os.remove(metadata)  # from here on the directory is incomplete until the merge
  _install_tokenizer(os.path.join(work, "tokenizer"), os.path.join(out_dir, "tokenizer"), tokenizer.fingerprint())
  for s in SPLITS:
    for stale in glob.glob(os.path.join(out_dir, f"{s}-{shard_index:05d}-*.array_record")):
      os.remove(stale)
    for name in part["splits"][s]["files"]:
      os.replace(os.path.join(work, name), os.path.join(out_dir, name))
  parts_dir = os.path.join(out_dir, "parts")
  os.makedirs(parts_dir, exist_ok=True)
  for stale in glob.glob(os.path.join(parts_dir, f"part-{shard_index:05d}-of-*.json")):
    os.remove(stale)
  _write_json(os.path.join(parts_dir, f"part-{shard_index:05d}-of-{num_shards:05d}.json"), part)


def _install_tokenizer(src: str, dst: str, fingerprint: str):
  """Puts the tokenizer at `dst` unless the same one is there (workers may race to do this)."""
  if os.path.isdir(dst):
    try:
      if Tokenizer.load(dst).fingerprint() == fingerprint:
        return
    except UserError:
      pass
    trash = f"{dst}.old-{os.getpid()}"
    os.replace(dst, trash)
    shutil.rmtree(trash, ignore_errors=True)
  try:
    os.replace(src, dst)
  except OSError:  # another worker installed it in between; the fingerprints are checked on merge
    pass


def _try_merge(out_dir: str, part: dict) -> dict | None:
  """Writes metadata.json when every worker's part of this run exists; returns it (or None)."""
  num_shards = part["num_shards"]
  parts = []
  for i in range(num_shards):
    path = os.path.join(out_dir, "parts", f"part-{i:05d}-of-{num_shards:05d}.json")
    try:
      with open(path) as f:
        other = json.load(f)
    except (OSError, json.JSONDecodeError):
      return None  # not written yet
    if other.get("config_key") != part["config_key"]:
      return None  # a stale part from an earlier run: its worker has not rerun yet
    if other["tokenizer_fingerprint"] != part["tokenizer_fingerprint"]:
      raise UserError(
        f"cannot merge {out_dir}: workers {i} and {part['shard_index']} used "
        "different tokenizers (pass the same data.tokenizer to every worker)"
      )
    parts.append(other)
  splits = {}
  for s in SPLITS:
    splits[s] = {key: [f for p in parts for f in p["splits"][s][key]] for key in ("files", "file_records")}
    for key in ("records", "tokens", "documents"):
      splits[s][key] = sum(p["splits"][s][key] for p in parts)
  if splits["train"]["records"] == 0:
    raise UserError(f"no training data in {part['source']}: every document was empty or held out")
  merged = {
    "format_version": FORMAT_VERSION,
    "seq_len": part["seq_len"],
    "tokenizer_fingerprint": part["tokenizer_fingerprint"],
    "vocab_size": part["vocab_size"],
    "special_ids": part["special_ids"],
    "num_shards": num_shards,
    "splits": splits,
    "source": part["source"],
    "options": part["options"],
    "record_format": "int32 input_ids then int32 segment_ids",
    "complete": True,
  }
  _write_json(os.path.join(out_dir, "metadata.json"), merged)
  return merged


def load_metadata(out_dir: str) -> dict:
  """The metadata of a prepared directory; `UserError` if it is not (completely) prepared.

  Args:
    out_dir: a directory `prepare` wrote.

  Returns:
    The parsed `metadata.json`.
  """
  path = paths.join(out_dir, "metadata.json")
  if not paths.isfile(path):
    raise UserError(
      f"{out_dir} is not a prepared data directory (no metadata.json); run prepare first" + _waiting_note(out_dir)
    )
  metadata = json.loads(paths.read_bytes(path))
  if metadata.get("format_version") != FORMAT_VERSION:
    raise UserError(
      f"{out_dir} was prepared in format {metadata.get('format_version')}, "
      f"this version reads {FORMAT_VERSION}: prepare it again"
    )
  return metadata


def _waiting_note(out_dir: str) -> str:
  parts = paths.glob(out_dir, "parts/part-*-of-*.json")
  return f" ({len(parts)} worker part(s) exist; are workers still running?)" if parts else ""


def is_prepared(out_dir: str, seq_len: int, tokenizer_fingerprint: str | None = None) -> bool:
  """Whether `out_dir` holds a complete dataset with this seq_len (and tokenizer, if given).

  Args:
    out_dir: a directory `prepare` may have written.
    seq_len: the row length wanted.
    tokenizer_fingerprint: the tokenizer wanted (`Tokenizer.fingerprint()`), or None for any.

  Returns:
    True when metadata.json exists, matches, and every file it lists exists (for a mixture: every
    source is prepared with its tokenizer).
  """
  try:
    metadata = load_metadata(out_dir)
  except (UserError, OSError, json.JSONDecodeError):
    return False
  if metadata["seq_len"] != seq_len:
    return False
  if tokenizer_fingerprint is not None and metadata["tokenizer_fingerprint"] != tokenizer_fingerprint:
    return False
  if metadata.get("mixture"):  # every source complete, with the mixture's tokenizer (`mixture.py`)
    fingerprint = metadata["tokenizer_fingerprint"]
    return all(is_prepared(paths.join(out_dir, s["dir"]), seq_len, fingerprint) for s in metadata["sources"])
  files = itertools.chain.from_iterable(s["files"] for s in metadata["splits"].values())
  return all(paths.isfile(paths.join(out_dir, f)) for f in files)
