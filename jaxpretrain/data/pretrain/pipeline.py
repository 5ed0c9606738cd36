"""The pretraining `RunData` (`build_pretraining`): prepared shards, prepared on first use, read by grain.

Which task packs its rows how is the task table's (`tasks/registry.py`) to say: it passes the
task's packing in.
"""

from __future__ import annotations

import os

import jax

from jaxpretrain.data.common import RunData, check_vocab_size
from jaxpretrain.errors import UserError, warn


def prepared_dir(config, workdir: str) -> str:
  """The run's prepared directory: `data.prepared_dir`, else WORKDIR/data."""
  return config.data.prepared_dir or os.path.join(workdir, "data")


def packing(config, task_packing: str) -> str:
  """How the run's rows are packed.

  Args:
    config: the run config (`data.packing`: auto | bert | gpt).
    task_packing: the packing of the run's task, which `auto` stands for (the task table's).

  Returns:
    "bert" or "gpt" (see `packing.py`).
  """
  value = config.data.get("packing", "auto")
  return task_packing if value == "auto" else value


def prepare_from_config(
  config, out: str, rows: str, *, shard_index: int = 0, num_shards: int = 1, progress: bool = True
) -> dict:
  """`prepare.prepare` with the run config's data keys (what `jaxpretrain prepare` and a first run do).

  Args:
    config: the run config (`data.*`, `model.vocab_size`, `train.seed`).
    out: the prepared directory.
    rows: the packing ("bert" or "gpt", see `packing`).
    shard_index, num_shards: this worker's share of the source.
    progress: print progress on stderr.

  Returns:
    The metadata `prepare` returns.
  """
  from jaxpretrain.data.pretrain import prepare as prepare_lib

  return prepare_lib.prepare(
    config.data.train,
    out,
    seq_len=config.data.seq_len,
    vocab_size=config.model.vocab_size,
    tokenizer_dir=config.data.tokenizer,
    eval_fraction=config.data.eval_fraction,
    embedded_documents=config.data.embedded_documents,
    records_per_shard=config.data.records_per_shard,
    shard_index=shard_index,
    num_shards=num_shards,
    seed=config.train.seed,
    progress=progress,
    packing=rows,
  )


def ensure_prepared(config, workdir: str, task_packing: str) -> str:
  """Runs `prepare` when the run's data is not prepared yet; returns the prepared directory.

  Args:
    config: the run config.
    workdir: the run's workdir (prepared data defaults to WORKDIR/data).
    task_packing: the packing of the run's task (see `packing`).

  Returns:
    The prepared directory.
  """
  from jaxpretrain.data.pretrain import prepare as prepare_lib

  out = prepared_dir(config, workdir)
  rows = packing(config, task_packing)
  if prepare_lib.is_prepared(out, config.data.seq_len, None):
    # Data packed for another objective would train silently on the wrong rows.
    have = prepare_lib.load_metadata(out).get("options", {}).get("packing", "bert")
    if have != rows:
      raise UserError(
        f"prepared data in {out} is packed for {have} (data.packing), this run needs "
        f"{rows}; use another data.prepared_dir"
      )
  else:
    if jax.process_index() == 0:
      prepare_from_config(config, out, rows, progress=config.train.progress)
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils

      multihost_utils.sync_global_devices("jaxpretrain:prepare")
  return out


def build_pretraining(config, workdir: str, task_packing: str) -> RunData:
  """Prepared shards → grain iterators for MLM / causal-LM pretraining.

  Args:
    config: the run config.
    workdir: the run's workdir (prepared data defaults to WORKDIR/data).
    task_packing: the packing of the run's task (see `packing`).

  Returns:
    The run's `RunData`.
  """
  from jaxpretrain.data.pretrain import loader
  from jaxpretrain.data.pretrain import prepare as prepare_lib
  from jaxpretrain.data.tokenizer import Tokenizer

  out = ensure_prepared(config, workdir, task_packing)
  meta = prepare_lib.load_metadata(out)
  if meta["seq_len"] != config.data.seq_len:
    raise UserError(
      f"prepared data in {out} has seq_len {meta['seq_len']}, config asks data.seq_len="
      f"{config.data.seq_len}; use another data.prepared_dir"
    )
  tokenizer = Tokenizer.load(os.path.join(out, "tokenizer"))
  check_vocab_size(tokenizer, config.model.vocab_size)
  kw = dict(process_index=jax.process_index(), process_count=jax.process_count())
  train = loader.make_dataset(
    out, "train", global_batch_size=config.train.batch_size, seed=config.train.seed, shuffle=True, repeat=True, **kw
  )
  eval_size = config.eval.batch_size or config.train.batch_size
  held_out = loader.epoch_size(out, "eval")
  has_eval = held_out >= eval_size
  if not has_eval:
    warn(
      f"the held-out split has {held_out} examples, fewer than one eval batch of {eval_size}: no "
      f"evaluation will run (raise data.eval_fraction or lower eval.batch_size)"
    )

  def eval_batches():
    if not has_eval:
      return []
    it = iter(loader.make_dataset(out, "eval", global_batch_size=eval_size, seed=0, shuffle=False, repeat=True, **kw))
    return [next(it) for _ in range(config.eval.batches)]

  steps_per_epoch = max(loader.epoch_size(out, "train") // config.train.batch_size, 1)
  return RunData(
    train=iter(train),
    eval_batches=eval_batches,
    steps_per_epoch=steps_per_epoch,
    tokenizer=tokenizer,
    seq_len=config.data.seq_len,
    info={"special_ids": tokenizer.special_ids, "prepared_dir": out},
  )
