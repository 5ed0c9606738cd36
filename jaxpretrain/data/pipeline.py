"""What a training run reads: `RunData` for pretraining (prepared shards) via `build`.

Fine-tuning tasks build their `RunData` from labeled examples (`data/labeled.py`); the loop sees
only this interface.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Iterable, Iterator

import jax

from jaxpretrain.errors import UserError, warn


@dataclasses.dataclass
class RunData:
  """The data side of a run.

  Attributes:
    train: infinite iterator of process-local numpy batches with `get_state()`/`set_state()`.
    eval_batches: fn() -> iterable of process-local eval batches (the same every call).
    steps_per_epoch: optimizer steps in one pass over the training data.
    tokenizer: the run's `Tokenizer` (saved with checkpoints).
    seq_len: tokens per example.
    info: task-specific facts (special ids, label names, ...), JSON-able.
  """
  train: Iterator
  eval_batches: Callable[[], Iterable[dict]]
  steps_per_epoch: int
  tokenizer: Any
  seq_len: int
  info: dict


def prepared_dir(config, workdir: str) -> str:
  return config.data.prepared_dir or os.path.join(workdir, "data")


def packing(config) -> str:
  """How the run's rows are packed: `data.packing`, or for `auto` gpt under causal_lm, else bert."""
  value = config.data.get("packing", "auto")
  if value == "auto":
    return "gpt" if config.task.name == "causal_lm" else "bert"
  return value


def ensure_prepared(config, workdir: str) -> str:
  """Runs `prepare` when the run's data is not prepared yet; returns the prepared directory."""
  from jaxpretrain.data import prepare as prepare_lib
  out = prepared_dir(config, workdir)
  if prepare_lib.is_prepared(out, config.data.seq_len, None):
    # Data packed for another objective would train silently on the wrong rows.
    have = prepare_lib.load_metadata(out).get("options", {}).get("packing", "bert")
    if have != packing(config):
      raise UserError(f"prepared data in {out} is packed for {have} (data.packing), this run needs "
                      f"{packing(config)}; use another data.prepared_dir")
  else:
    if jax.process_index() == 0:
      prepare_lib.prepare(config.data.train, out, seq_len=config.data.seq_len, vocab_size=config.model.vocab_size,
                          tokenizer_dir=config.data.tokenizer, eval_fraction=config.data.eval_fraction,
                          embedded_documents=config.data.embedded_documents,
                          records_per_shard=config.data.records_per_shard, seed=config.train.seed,
                          progress=config.train.progress, packing=packing(config))
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils
      multihost_utils.sync_global_devices("jaxpretrain:prepare")
  return out


def build_pretraining(config, workdir: str) -> RunData:
  """Prepared shards → grain iterators for MLM / causal-LM pretraining.

  Args:
    config: the run config.
    workdir: the run's workdir (prepared data defaults to WORKDIR/data).

  Returns:
    The run's `RunData`.
  """
  from jaxpretrain.data import loader, prepare as prepare_lib
  from jaxpretrain.data.tokenizer import Tokenizer
  out = ensure_prepared(config, workdir)
  meta = prepare_lib.load_metadata(out)
  if meta["seq_len"] != config.data.seq_len:
    raise UserError(f"prepared data in {out} has seq_len {meta['seq_len']}, config asks data.seq_len="
                    f"{config.data.seq_len}; use another data.prepared_dir")
  tokenizer = Tokenizer.load(os.path.join(out, "tokenizer"))
  if tokenizer.vocab_size > config.model.vocab_size:
    raise UserError(f"tokenizer has {tokenizer.vocab_size} tokens but model.vocab_size={config.model.vocab_size}")
  kw = dict(process_index=jax.process_index(), process_count=jax.process_count())
  train = loader.make_dataset(out, "train", global_batch_size=config.train.batch_size, seed=config.train.seed,
                              shuffle=True, repeat=True, **kw)
  eval_size = config.eval.batch_size or config.train.batch_size
  held_out = loader.epoch_size(out, "eval")
  has_eval = held_out >= eval_size
  if not has_eval:
    warn(f"the held-out split has {held_out} examples, fewer than one eval batch of {eval_size}: no "
         f"evaluation will run (raise data.eval_fraction or lower eval.batch_size)")

  def eval_batches():
    if not has_eval:
      return []
    it = iter(loader.make_dataset(out, "eval", global_batch_size=eval_size, seed=0, shuffle=False,
                                  repeat=True, **kw))
    return [next(it) for _ in range(config.eval.batches)]

  steps_per_epoch = max(loader.epoch_size(out, "train") // config.train.batch_size, 1)
  return RunData(train=iter(train), eval_batches=eval_batches, steps_per_epoch=steps_per_epoch,
                 tokenizer=tokenizer, seq_len=config.data.seq_len,
                 info={"special_ids": tokenizer.special_ids, "prepared_dir": out})
