"""Translation pairs for fine-tuning a decoder: reading, encoding as `source <sep> target`, `RunData`.

Sources (`data.train` / `data.eval`):
  * `embedded`: the embedded translation task (`data/embedded_translation.py`), no download;
  * a `.jsonl` file, one pair per line: `{"source": ..., "target": ...}` (other field names via
    `data.source_field` / `data.target_field`, or HF-style `{"translation": {"de": .., "en": ..}}`
    with the language codes as field names);
  * `tfds:NAME[/CONFIG][:SPLIT]`, a tfds translation dataset (e.g. `tfds:ted_hrlr_translate/pt_to_en`,
    or `tfds:wmt14_translate/de-en` where TensorFlow is installed); source and target default to
    the dataset's supervised keys.

A pair becomes one row `[BOS] source [SEP] target [EOS]`, right-padded, with `loss_mask` 1 on the
target and EOS only: the decoder learns to continue a source after [SEP] with its translation and
to stop. (BOS/SEP/EOS are the tokenizer's cls/sep/sep; GPT-2's <|endoftext|> stands in for all.)
A pair longer than `data.seq_len` loses tokens from the end of the longer side first. Without
`data.eval`, files hold out `data.eval_fraction` of their pairs; tfds uses its validation (or
test) split; the embedded task its test split.
"""
from __future__ import annotations

import math
import os

import jax
import numpy as np

from jaxpretrain.data import sources
from jaxpretrain.data.labeled import LabeledBatches, padded_batches, resolve_tokenizer
from jaxpretrain.data.pipeline import RunData
from jaxpretrain.data.prepare import held_out
from jaxpretrain.errors import UserError
from jaxpretrain.tasks.causal_lm import boundary_ids

EMBEDDED_TRAIN_PAIRS = 2000   # the embedded task's sizes when data.*_examples is 0
EMBEDDED_EVAL_PAIRS = 500


def read_pairs(spec: str, split: str, *, limit: int = 0, seed: int = 0, source_field: str = "",
               target_field: str = "") -> list[dict]:
  """Reads translation pairs.

  Args:
    spec: `embedded`, a `.jsonl` path, or `tfds:NAME[/CONFIG][:SPLIT]`.
    split: "train" or "eval" (the embedded split; a tfds dataset's default split).
    limit: keep the first `limit` pairs (0 = all; the embedded task's default size).
    seed: the embedded task's stream.
    source_field, target_field: the fields holding the texts ("" = see the module doc).

  Returns:
    `[{"source": str, "target": str, "where": str}]`.
  """
  if spec == "embedded":
    from jaxpretrain.data import embedded_translation  # pylint: disable=import-outside-toplevel
    limit = limit or (EMBEDDED_TRAIN_PAIRS if split == "train" else EMBEDDED_EVAL_PAIRS)
    return [dict(p, where=f"embedded:{split}[{i}]")
            for i, p in enumerate(embedded_translation.pairs("train" if split == "train" else "test", limit, seed))]
  if spec.startswith("tfds:"):
    return _tfds_pairs(spec, split, limit, source_field, target_field)
  if not os.path.isfile(spec):
    raise UserError(f"translation data file not found: {spec}")
  out = []
  for where, row in sources.jsonl_rows(spec):
    out.append(_pair(row, where, source_field, target_field))
    if limit and len(out) == limit:
      break
  if not out:
    raise UserError(f"no translation pairs in {spec}")
  return out


def _pair(row, where: str, source_field: str, target_field: str) -> dict:
  """One record as a pair; a `UserError` naming `where` when the fields are missing or not text."""
  if not isinstance(row, dict):
    raise UserError(f"{where}: expected a JSON object with 'source' and 'target'")
  if isinstance(row.get("translation"), dict):   # HF datasets' translation rows
    row = row["translation"]
  source_field, target_field = source_field or "source", target_field or "target"
  texts = []
  for field in (source_field, target_field):
    if field not in row:
      raise UserError(f"{where}: no {field!r} field (set data.source_field / data.target_field; it has "
                      f"{', '.join(map(str, row)) or 'no fields'})")
    value = row[field]
    if isinstance(value, bytes):
      value = value.decode("utf-8")
    if not isinstance(value, str):
      raise UserError(f"{where}: field {field!r} is {type(value).__name__}, not text")
    texts.append(value)
  return {"source": texts[0], "target": texts[1], "where": where}


def _tfds_pairs(spec: str, split: str, limit: int, source_field: str, target_field: str) -> list[dict]:
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel  (slow; optional)
  from jaxpretrain.data.sources import parse_tfds_spec, tfds_builder  # pylint: disable=import-outside-toplevel

  name, given_split = parse_tfds_spec(spec)
  builder = tfds_builder(spec)
  if ":" not in spec[len("tfds:"):] and split != "train":
    splits = list(builder.info.splits.keys())
    given_split = next((s for s in ("validation", "test") if s in splits), "validation")
  keys = builder.info.supervised_keys or ("", "")
  source_field, target_field = source_field or keys[0], target_field or keys[1]
  if not source_field or not target_field:
    raise UserError(f"{spec} has no supervised keys: set data.source_field and data.target_field")
  try:
    source = tfds.data_source(name, split=given_split)
    length = len(source)
  except Exception as e:  # pylint: disable=broad-except  (download, preparation, split problems)
    raise UserError(f"cannot read {spec} split {given_split!r}: {_first_line(e)}") from None
  count = min(length, limit) if limit else length
  out = [_pair(dict(source[i]), f"{spec}:{given_split}[{i}]", source_field, target_field) for i in range(count)]
  if not out:
    raise UserError(f"no translation pairs in {spec} split {given_split!r}")
  return out


def _first_line(e: Exception) -> str:
  text = str(e).strip()
  return text.splitlines()[0] if text else type(e).__name__


def read(config, split: str) -> tuple[list[dict], str]:
  """The pairs of `split` ("train" or "eval") as the config names them, and the spec read."""
  train_spec = config.data.train
  spec = train_spec if split == "train" else (config.data.eval or train_spec)
  limit = config.data.train_examples if split == "train" else config.data.eval_examples
  file_split = split == "eval" and not config.data.eval and spec != "embedded" and not spec.startswith("tfds:")
  records = read_pairs(spec, "train" if file_split else split, limit=0 if file_split else limit,
                       seed=config.train.seed if split == "train" else 0,
                       source_field=config.data.source_field, target_field=config.data.target_field)
  if spec != "embedded" and not spec.startswith("tfds:") and not config.data.eval:
    keep = [r for i, r in enumerate(records) if held_out(i, config.train.seed, config.data.eval_fraction) == (split == "eval")]
    records = keep[:limit] if limit else keep
  return records, spec


def _fit(source: list[int], target: list[int], budget: int) -> tuple[list[int], list[int]]:
  """Drops tokens from the end of the longer side until both fit in `budget`."""
  source, target = list(source), list(target)
  while len(source) + len(target) > budget:
    if len(source) > len(target):
      source.pop()
    else:
      target.pop()
  return source, target


def encode_pairs(pairs: list[dict], tokenizer, seq_len: int) -> tuple[dict, int]:
  """Rows `[BOS] source [SEP] target [EOS]`, right-padded to `seq_len`.

  Args:
    pairs: from `read_pairs`.
    tokenizer: the run's `Tokenizer`.
    seq_len: the row length.

  Returns:
    (`input_ids`, `attention_mask`, `loss_mask` np.int32 [n, seq_len], the number of pairs that
    had to be truncated).
  """
  bos, eos = boundary_ids(tokenizer.special_ids)
  sep = tokenizer.special_ids["sep"]
  sources = tokenizer.encode_batch([p["source"] for p in pairs])
  targets = tokenizer.encode_batch([p["target"] for p in pairs])
  n = len(pairs)
  arrays = {"input_ids": np.full((n, seq_len), tokenizer.special_ids["pad"], np.int32),
            "attention_mask": np.zeros((n, seq_len), np.int32), "loss_mask": np.zeros((n, seq_len), np.int32)}
  truncated = 0
  for i, (source, target) in enumerate(zip(sources, targets)):
    fitted = _fit(source, target, seq_len - 3)
    truncated += fitted != (source, target)
    source, target = fitted
    row = [bos, *source, sep, *target, eos]
    arrays["input_ids"][i, :len(row)] = row
    arrays["attention_mask"][i, :len(row)] = 1
    arrays["loss_mask"][i, len(source) + 2:len(row)] = 1
  return arrays, truncated


def prompts(pairs: list[dict], tokenizer, seq_len: int) -> list[list[int]]:
  """Generation prompts `[BOS] source [SEP]`, sources cut to at most half of `seq_len` (the rest
  is the translation's room)."""
  bos, _ = boundary_ids(tokenizer.special_ids)
  sep = tokenizer.special_ids["sep"]
  return [[bos, *source[:seq_len // 2 - 2], sep] for source in tokenizer.encode_batch([p["source"] for p in pairs])]


def build_translation(config, workdir: str, *, with_train: bool = True) -> RunData:
  """The `RunData` of a translation fine-tune (`task.name = "translation"`).

  Args:
    config: the run config.
    workdir: the run's workdir (its tokenizer is reused when present).
    with_train: False reads only the evaluation pairs (for `evaluate`).

  Returns:
    The `RunData`; `info` holds the specs, pair counts, truncations and special ids.
  """
  train_pairs = read(config, "train")[0] if with_train else []
  tokenizer = resolve_tokenizer(config, workdir, lambda: [t for p in train_pairs for t in (p["source"], p["target"])])
  if tokenizer.vocab_size > config.model.vocab_size:
    raise UserError(f"the tokenizer has {tokenizer.vocab_size} tokens but model.vocab_size={config.model.vocab_size}")
  eval_pairs, eval_spec = read(config, "eval")
  kw = dict(process_index=jax.process_index(), process_count=jax.process_count())
  eval_arrays, eval_truncated = encode_pairs(eval_pairs, tokenizer, config.data.seq_len)
  eval_list = padded_batches(eval_arrays, config.eval.batch_size or config.train.batch_size, **kw)
  train_iter, steps_per_epoch, train_truncated = iter(()), 1, 0
  if with_train:
    train_arrays, train_truncated = encode_pairs(train_pairs, tokenizer, config.data.seq_len)
    train_arrays["weight"] = np.ones(len(train_pairs), np.float32)
    train_iter = LabeledBatches(train_arrays, config.train.batch_size, config.train.seed, **kw)
    steps_per_epoch = max(1, math.ceil(len(train_pairs) / config.train.batch_size))
  info = {"task": "translation", "train": config.data.train, "eval": eval_spec, "train_examples": len(train_pairs),
          "eval_examples": len(eval_pairs), "truncated": {"train": train_truncated, "eval": eval_truncated},
          "special_ids": tokenizer.special_ids, "tokenizer_fingerprint": tokenizer.fingerprint()}
  return RunData(train=train_iter, eval_batches=lambda: eval_list, steps_per_epoch=steps_per_epoch,
                 tokenizer=tokenizer, seq_len=config.data.seq_len, info=info)
