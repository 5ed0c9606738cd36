"""`build_translation`: the `RunData` of a translation fine-tune, pairs encoded as `source <sep> target`.

The `base.py` skeleton filled in for translation pairs (`readers/pairs.py`). A pair becomes one row
`[BOS] source [SEP] target [EOS]`, right-padded, with `loss_mask` 1 on the target and EOS only: the
decoder learns to continue a source after [SEP] with its translation and to stop. (BOS/SEP/EOS
are the tokenizer's cls/sep/sep; GPT-2's <|endoftext|> stands in for all.) A pair longer than
`data.seq_len` loses tokens from the end of the longer side first.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from jaxpretrain.data.common import RunData, boundary_ids
from jaxpretrain.data.finetune.base import read_split, resolve_tokenizer, run_data
from jaxpretrain.data.readers.pairs import EMBEDDED_EVAL_PAIRS, EMBEDDED_TRAIN_PAIRS, read_pairs


def read(config, split: str) -> tuple[list[dict], str]:
  """The pairs of `split` ("train" or "eval") as the config names them, and the spec read.

  Splits, limits and held-out pairs follow `base.read_split`.
  """

  def read_source(spec: str, source_split: str, *, limit: int, seed: int):
    return read_pairs(
      spec,
      source_split,
      limit=limit,
      seed=seed,
      source_field=config.data.source_field,
      target_field=config.data.target_field,
    ), None

  records, _, spec = read_split(config, split, read_source, embedded_sizes=(EMBEDDED_TRAIN_PAIRS, EMBEDDED_EVAL_PAIRS))
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
    pairs: from `readers.pairs.read_pairs`.
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
  arrays = {
    "input_ids": np.full((n, seq_len), tokenizer.special_ids["pad"], np.int32),
    "attention_mask": np.zeros((n, seq_len), np.int32),
    "loss_mask": np.zeros((n, seq_len), np.int32),
  }
  truncated = 0
  for i, (source, target) in enumerate(zip(sources, targets)):
    fitted = _fit(source, target, seq_len - 3)
    truncated += fitted != (source, target)
    source, target = fitted
    row = [bos, *source, sep, *target, eos]
    arrays["input_ids"][i, : len(row)] = row
    arrays["attention_mask"][i, : len(row)] = 1
    arrays["loss_mask"][i, len(source) + 2 : len(row)] = 1
  return arrays, truncated


def prompts(pairs: list[dict], tokenizer, seq_len: int) -> list[list[int]]:
  """Generation prompts `[BOS] source [SEP]`, sources cut to at most half of `seq_len` (the rest
  is the translation's room)."""
  bos, _ = boundary_ids(tokenizer.special_ids)
  sep = tokenizer.special_ids["sep"]
  return [[bos, *source[: seq_len // 2 - 2], sep] for source in tokenizer.encode_batch([p["source"] for p in pairs])]


def build_translation(
  config,
  workdir: str,
  *,
  init_tokenizer_dir: Callable[..., str],
  with_train: bool = True,
  tokenizer_type: str = "bpe",
) -> RunData:
  """The `RunData` of a translation fine-tune (`task.name = "translation"`).

  Args:
    config: the run config.
    workdir: the run's workdir (its tokenizer is reused when present).
    init_tokenizer_dir: config -> the tokenizer directory of `init_from` (see
      `base.resolve_tokenizer`).
    with_train: False reads only the evaluation pairs (for `evaluate`).
    tokenizer_type: the tokenizer trained when there is none to load (see `base.resolve_tokenizer`).

  Returns:
    The `RunData`; `info` holds the specs, pair counts, truncations and special ids.
  """
  train_pairs = read(config, "train")[0] if with_train else []
  tokenizer = resolve_tokenizer(
    config,
    workdir,
    lambda: [t for p in train_pairs for t in (p["source"], p["target"])],
    init_tokenizer_dir,
    tokenizer_type,
  )
  eval_pairs, eval_spec = read(config, "eval")
  eval_arrays, eval_truncated = encode_pairs(eval_pairs, tokenizer, config.data.seq_len)
  train_arrays, train_truncated = None, 0
  if with_train:
    train_arrays, train_truncated = encode_pairs(train_pairs, tokenizer, config.data.seq_len)
    train_arrays["weight"] = np.ones(len(train_pairs), np.float32)
  info = {
    "task": config.task.name,
    "train": config.data.train,
    "eval": eval_spec,
    "train_examples": len(train_pairs),
    "eval_examples": len(eval_pairs),
    "truncated": {"train": train_truncated, "eval": eval_truncated},
  }
  return run_data(config, tokenizer, train_arrays, eval_arrays, info)
