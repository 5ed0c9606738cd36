"""Weighted mixtures of pretraining sources: `data.train="SPEC@WEIGHT,SPEC@WEIGHT,..."`.

Each SPEC is any corpus `readers.text.iter_documents` reads; weights are positive numbers,
normalized to sum 1. A mixture's prepared directory holds one tokenizer shared by every source
and each source prepared with it into an ordinary prepared directory of its own (`prepare.py`):

  tokenizer/                 the shared tokenizer
  sources/{i}-{slug}/        source i, prepared (its own tokenizer/ copy, shards, metadata.json)
  metadata.json              {"mixture": true, "sources": [...], "splits": totals}, written last

The shared tokenizer (unless `data.tokenizer` names one) is trained on one sample drawn from every
source: up to weight x the single-corpus sample budget of each source's training documents. A
source whose directory is already prepared with the same options and tokenizer is reused.

The loader (`loader.py`) gives every batch the same composition, `batch_rows(weights, batch)`.
"""

from __future__ import annotations

import dataclasses
import glob
import math
import os
import re
import shutil
import sys

from jaxpretrain.data.pretrain import prepare as prepare_lib
from jaxpretrain.data.readers.text import iter_documents
from jaxpretrain.data.tokenizer import Tokenizer
from jaxpretrain.errors import UserError, storage_errors

SYNTAX = "write SPEC@WEIGHT,SPEC@WEIGHT,..."
COUNTS = ("documents", "tokens", "records")  # what metadata and data_info.json count per source and split


@dataclasses.dataclass(frozen=True)
class Source:
  """One source of a mixture.

  Attributes:
    spec: the corpus (see `readers.text.iter_documents`).
    weight: its share of every batch, normalized (the weights of a mixture sum to 1).
    name: `{index}-{slug}`: its directory under `sources/` and its name in data_info.json and metrics.
  """

  spec: str
  weight: float
  name: str


def parse(spec: str) -> list[Source] | None:
  """The sources of a mixture spec, or None for a single source.

  A spec is a mixture when it has an `@`, unless it names an existing path (a file called `a@b.txt`).

  Args:
    spec: `data.train`.

  Returns:
    The sources in the order given, weights normalized; None when `spec` is one source.

  Raises:
    UserError: an empty source, a weight that is not a positive number, or a source named twice.
  """
  spec = (spec or "").strip()
  if "@" not in spec or os.path.exists(spec):
    return None
  specs, weights, seen = [], [], set()
  for k, part in enumerate(spec.split(","), 1):
    part = part.strip()
    source, at, weight = part.rpartition("@")
    source = source.strip()
    if part and not at:
      raise UserError(f"data.train: source {k} ({part}) of the mixture has no @WEIGHT; {SYNTAX}")
    if not source:
      raise UserError(f"data.train: source {k} of the mixture is empty ({part!r}); {SYNTAX}")
    try:
      value = float(weight)
    except ValueError:
      raise UserError(f"data.train: the weight {weight.strip()!r} of {source} is not a number; {SYNTAX}") from None
    if not (math.isfinite(value) and value > 0):
      raise UserError(f"data.train: the weight {weight.strip()!r} of {source} must be a positive number")
    key = os.path.realpath(source) if os.path.exists(source) else source
    if key in seen:
      raise UserError(f"data.train: {source} is named twice in the mixture; give each source once")
    seen.add(key)
    specs.append(source)
    weights.append(value)
  total = sum(weights)
  if not (math.isfinite(total) and total > 0):
    raise UserError(f"data.train: the mixture's weights sum to {total}; give weights with a positive, finite sum")
  return [Source(s, w / total, f"{i}-{_slug(s)}") for i, (s, w) in enumerate(zip(specs, weights))]


def _slug(spec: str) -> str:
  """A short name for a source: a path's file name (without extension), else the whole spec."""
  text = spec if re.match(r"^[A-Za-z]+:", spec) else os.path.splitext(os.path.basename(spec.rstrip("/")))[0]
  for candidate in (text, spec):  # a glob's file name may have no letters: then the whole spec
    slug = re.sub(r"[^a-z0-9]+", "-", candidate.lower()).strip("-")[-40:].strip("-")
    if slug:
      return slug
  return "source"


def batch_rows(weights: list[float], batch_size: int) -> list[int]:
  """Rows of each source in a batch: the largest-remainder rounding of weight x batch size.

  Args:
    weights: the sources' weights (summing to 1).
    batch_size: rows of the batch.

  Returns:
    Non-negative counts summing to `batch_size`; ties of remainders go to the earlier source.
  """
  quotas = [w * batch_size for w in weights]
  rows = [math.floor(q) for q in quotas]
  by_remainder = sorted(range(len(rows)), key=lambda i: (-(quotas[i] - rows[i]), i))
  for i in by_remainder[: max(batch_size - sum(rows), 0)]:
    rows[i] += 1
  return rows


def check_rows(sources: list[Source], batch_size: int) -> None:
  """A one-line `UserError` when a source would get no row of a training batch.

  Args:
    sources: from `parse`.
    batch_size: `train.batch_size`.
  """
  for source, rows in zip(sources, batch_rows([s.weight for s in sources], batch_size)):
    if rows == 0:
      raise UserError(
        f"data.train: {source.spec} (weight {source.weight:.3g}) gets 0 of the {batch_size} rows of a batch; "
        f"raise its weight or train.batch_size"
      )


def matches(metadata: dict, sources: list[Source]) -> bool:
  """Whether prepared metadata is the mixture of `sources` (the same specs, in order, with the same weights)."""
  have = [(s["spec"], s["weight"]) for s in metadata.get("sources", [])] if metadata.get("mixture") else None
  return have == [(s.spec, s.weight) for s in sources]


def source_dirs(prepared_dir: str, metadata: dict) -> list[tuple[str, str, float]]:
  """(name, directory, weight) of each source of a prepared directory; one, weight 1, if not a mixture.

  Args:
    prepared_dir: a directory `prepare` wrote.
    metadata: its metadata.json.

  Returns:
    The sources in mixture order.
  """
  if not metadata.get("mixture"):
    return [("data", prepared_dir, 1.0)]
  return [(s["name"], os.path.join(prepared_dir, s["dir"]), s["weight"]) for s in metadata["sources"]]


def describe(metadata: dict, batch_size: int) -> list[dict]:
  """Per-source facts for data_info.json: spec, weight, rows of each batch, and the training split's counts.

  Args:
    metadata: a mixture's metadata.json.
    batch_size: `train.batch_size`.

  Returns:
    One dict per source: name, spec, weight, rows_per_step, documents, tokens, records, eval (its counts).
  """
  rows = batch_rows([s["weight"] for s in metadata["sources"]], batch_size)
  return [
    {
      "name": s["name"],
      "spec": s["spec"],
      "weight": s["weight"],
      "rows_per_step": r,
      **{k: s["splits"]["train"][k] for k in COUNTS},
      "eval": {k: s["splits"]["eval"][k] for k in COUNTS},
    }
    for s, r in zip(metadata["sources"], rows)
  ]


def prepare(
  sources: list[Source],
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
  """Prepares a mixture (or this worker's share of each source) into `out_dir`.

  Every source is read before anything is written, so a bad or empty source is an error that
  leaves `out_dir` as it was. Each source is then prepared by `prepare.prepare` (sharded the same
  way, `shard_index` of `num_shards`) with the shared tokenizer.

  Args:
    sources: from `parse`.
    out_dir: the prepared directory.
    seq_len, vocab_size, tokenizer_dir, eval_fraction, embedded_documents, records_per_shard,
    shard_index, num_shards, seed, progress, packing, tokenizer_type, text_column: as for
      `prepare.prepare` (the shared tokenizer is of `tokenizer_type`).

  Returns:
    The mixture's metadata once every source is complete, else `{"complete": False, ...}`.
  """
  prepare_lib._check_args(seq_len, vocab_size, tokenizer_dir, eval_fraction, records_per_shard, shard_index, num_shards)
  if packing not in prepare_lib.PACKERS:
    raise UserError(f"data.packing={packing!r}; choose {' or '.join(prepare_lib.PACKERS)}")
  kw = dict(embedded_documents=embedded_documents, seed=seed, text_column=text_column)
  streams = [iter_documents(s.spec, **kw) for s in sources]  # bad paths and unknown datasets fail here
  if tokenizer_dir:
    tokenizer = Tokenizer.load(tokenizer_dir)
    for source, documents in zip(sources, streams):
      if next(documents, None) is None:
        raise UserError(f"no documents in {source.spec}")
  else:
    tokenizer = _train_shared(
      sources, streams, vocab_size, seed=seed, eval_fraction=eval_fraction, progress=progress, kind=tokenizer_type
    )
  del streams
  fingerprint = tokenizer.fingerprint()
  shared = os.path.join(out_dir, "tokenizer")
  with storage_errors(f"preparing data in {out_dir}"):
    prepare_lib.claim_directory(out_dir)
    metadata = os.path.join(out_dir, "metadata.json")
    if os.path.exists(metadata):
      os.remove(metadata)  # from here on the directory is incomplete until every source is
    staged = os.path.join(out_dir, f".tmp-tokenizer-{shard_index:05d}")
    shutil.rmtree(staged, ignore_errors=True)
    tokenizer.save(staged)
    prepare_lib._install_tokenizer(staged, shared, fingerprint)
    shutil.rmtree(staged, ignore_errors=True)
  options = dict(
    seq_len=seq_len,
    vocab_size=vocab_size,
    tokenizer_dir=shared,
    eval_fraction=eval_fraction,
    embedded_documents=embedded_documents,
    records_per_shard=records_per_shard,
    shard_index=shard_index,
    num_shards=num_shards,
    seed=seed,
    progress=progress,
    packing=packing,
    text_column=text_column,
  )
  for i, source in enumerate(sources):
    directory = os.path.join(out_dir, "sources", source.name)
    if _reusable(directory, source.spec, fingerprint, options):
      continue
    if progress:
      print(f"prepare: source {i + 1}/{len(sources)}: {source.spec}", file=sys.stderr, flush=True)
    prepare_lib.prepare(source.spec, directory, **options)
  return _try_merge(sources, out_dir, tokenizer, options)


def _train_shared(
  sources, streams, vocab_size: int, *, seed: int, eval_fraction: float, progress: bool, kind: str
) -> Tokenizer:
  """The shared tokenizer, trained on up to weight x the sample budget of each source's documents."""
  sample = []
  for source, documents in zip(sources, streams):
    part = prepare_lib._tokenizer_sample(
      documents,
      seed,
      eval_fraction,
      max_documents=max(1, round(source.weight * prepare_lib.TOKENIZER_SAMPLE_DOCUMENTS)),
      max_chars=max(1, round(source.weight * prepare_lib.TOKENIZER_SAMPLE_CHARS)),
    )
    if not part:
      raise UserError(f"no documents in {source.spec}")
    sample += part
  return prepare_lib.train_tokenizer(sample, vocab_size, progress=progress, kind=kind)


def _reusable(directory: str, spec: str, fingerprint: str, options: dict) -> bool:
  """Whether `directory` already holds `spec` prepared with these options and this tokenizer."""
  if not prepare_lib.is_prepared(directory, options["seq_len"], fingerprint):
    return False
  keys = (
    "seq_len",
    "vocab_size",
    "eval_fraction",
    "seed",
    "num_shards",
    "embedded_documents",
    "packing",
    "text_column",
  )
  want = prepare_lib._options(spec, tokenizer_dir="", **{k: options[k] for k in keys})
  have = prepare_lib.load_metadata(directory).get("options", {})
  return dict(have, tokenizer_dir="") == want  # the fingerprint decides: a moved directory is still reused


def _try_merge(sources: list[Source], out_dir: str, tokenizer: Tokenizer, options: dict) -> dict:
  """Writes the mixture's metadata.json when every source is complete; returns it (or an incomplete note)."""
  fingerprint, seq_len = tokenizer.fingerprint(), options["seq_len"]
  entries = []
  for source in sources:
    directory = os.path.join(out_dir, "sources", source.name)
    if not prepare_lib.is_prepared(directory, seq_len, fingerprint):
      return {"complete": False, "seq_len": seq_len, "sources": [s.spec for s in sources]}
    splits = prepare_lib.load_metadata(directory)["splits"]
    entries.append(
      {
        "name": source.name,
        "spec": source.spec,
        "weight": source.weight,
        "dir": os.path.join("sources", source.name),
        "splits": {split: {k: splits[split][k] for k in COUNTS} for split in prepare_lib.SPLITS},
      }
    )
  totals = {split: {k: sum(e["splits"][split][k] for e in entries) for k in COUNTS} for split in prepare_lib.SPLITS}
  source = ",".join(f"{s.spec}@{s.weight!r}" for s in sources)
  merged = {
    "format_version": prepare_lib.FORMAT_VERSION,
    "mixture": True,
    "seq_len": seq_len,
    "tokenizer_fingerprint": fingerprint,
    "vocab_size": tokenizer.vocab_size,
    "special_ids": tokenizer.special_ids,
    "num_shards": options["num_shards"],
    "source": source,
    "sources": entries,
    "splits": totals,
    "options": {"sources": [[s.spec, s.weight] for s in sources], "packing": options["packing"]},
    "complete": True,
  }
  with storage_errors(f"preparing data in {out_dir}"):
    prepare_lib._write_json(os.path.join(out_dir, "metadata.json"), merged)
    _remove_stale(out_dir, {s.name for s in sources})
  return merged


def _remove_stale(out_dir: str, names: set[str]) -> None:
  """Deletes what an earlier, different preparation left in `out_dir` (a claimed directory: ours)."""
  for path in glob.glob(os.path.join(out_dir, "*.array_record")):
    os.remove(path)  # the shards of a single-source dataset this directory held before
  shutil.rmtree(os.path.join(out_dir, "parts"), ignore_errors=True)
  for path in glob.glob(os.path.join(out_dir, "sources", "*")):
    if os.path.basename(path) not in names:
      shutil.rmtree(path, ignore_errors=True)
