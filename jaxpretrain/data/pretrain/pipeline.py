"""The pretraining `RunData` (`build_pretraining`): prepared shards, prepared on first use, read by grain.

Which task packs its rows how is the task table's (`tasks/registry.py`) to say: it passes the
task's packing in. `data.train` may be a weighted mixture of sources (`mixture.py`).

A remote `data.prepared_dir` (`gs://...`, or a remote workdir's data/) is prepared into a local
directory (`paths.local_cache`) and then copied up, metadata.json last; a run reads the ArrayRecord
shards from that local copy, downloaded once when it is missing or holds another preparation
(ArrayRecord and the tokenizer read local files only).
"""

from __future__ import annotations

import os
import shutil

import jax

from jaxpretrain import paths
from jaxpretrain.data.common import RunData, check_vocab_size
from jaxpretrain.data.pretrain import mixture
from jaxpretrain.errors import UserError, storage_errors, warn


def prepared_dir(config, workdir: str) -> str:
  """The run's prepared directory: `data.prepared_dir`, else WORKDIR/data."""
  return config.data.prepared_dir or paths.join(workdir, "data")


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


def mixture_sources(config) -> list[mixture.Source] | None:
  """The sources of a mixture `data.train`, each checked to get a row of every batch; None for one source."""
  sources = mixture.parse(config.data.train)
  if sources is not None:
    mixture.check_rows(sources, config.train.batch_size)
  return sources


def prepare_from_config(
  config,
  out: str,
  rows: str,
  *,
  shard_index: int = 0,
  num_shards: int = 1,
  progress: bool = True,
  tokenizer_type: str = "wordpiece",
) -> dict:
  """`prepare.prepare` (`mixture.prepare` for a mixture) with the run config's data keys (what
  `jaxpretrain prepare` and a first run do).

  Args:
    config: the run config (`data.*`, `model.vocab_size`, `train.seed`).
    out: the prepared directory.
    rows: the packing ("bert" or "gpt", see `packing`).
    shard_index, num_shards: this worker's share of the source (of each source of a mixture).
    progress: print progress on stderr.
    tokenizer_type: the tokenizer trained without `data.tokenizer` (the task table's
      `registry.tokenizer_type` says which).

  Returns:
    The metadata `prepare` returns.
  """
  if paths.is_remote(out):
    return _prepare_remote(config, out, rows, shard_index, num_shards, progress, tokenizer_type)
  from jaxpretrain.data.pretrain import prepare as prepare_lib
  from jaxpretrain.data.tokenizer import local_path

  options = dict(
    seq_len=config.data.seq_len,
    vocab_size=config.model.vocab_size,
    tokenizer_dir=local_path(config.data.tokenizer),
    eval_fraction=config.data.eval_fraction,
    embedded_documents=config.data.embedded_documents,
    records_per_shard=config.data.records_per_shard,
    shard_index=shard_index,
    num_shards=num_shards,
    seed=config.train.seed,
    progress=progress,
    packing=rows,
    tokenizer_type=tokenizer_type,
    text_column=config.data.text_column,
  )
  sources = mixture_sources(config)
  if sources is not None:
    return mixture.prepare(sources, out, **options)
  return prepare_lib.prepare(config.data.train, out, **options)


def _prepare_remote(config, out: str, rows: str, shard_index, num_shards, progress, tokenizer_type) -> dict:
  """`prepare_from_config` for a remote `out`: prepared into its local cache, then copied up."""
  from jaxpretrain.data.pretrain import prepare as prepare_lib

  if num_shards > 1:
    raise UserError(
      f"data.prepared_dir={out} is remote: prepare it in one piece (--num_shards=1), or prepare the shares "
      "into a shared local directory and copy that up"
    )
  entries = set(paths.listdir(out)) if paths.isdir(out) else set()
  if entries and not entries & {prepare_lib.OWNER_MARKER, "metadata.json", "parts"}:
    raise UserError(
      f"data.prepared_dir={out} is a non-empty directory that jaxpretrain did not prepare "
      f"(no {prepare_lib.OWNER_MARKER}); give a new or empty directory"
    )
  local = paths.local_cache(out)
  shutil.rmtree(local, ignore_errors=True)  # a fresh copy: nothing of another preparation rides along
  meta = prepare_from_config(
    config, local, rows, shard_index=shard_index, num_shards=1, progress=progress, tokenizer_type=tokenizer_type
  )
  with storage_errors(f"copying the prepared data to {out}"):
    paths.remove(paths.join(out, "metadata.json"))  # incomplete until metadata.json is copied, last
    paths.upload_dir(local, out, last=("metadata.json",))
  return meta


def _local_copy(out: str) -> str:
  """The local directory a run reads the prepared data `out` from: `out` itself, or for a remote
  `out` its local cache, downloaded when it does not hold the same metadata.json as `out`."""
  if not paths.is_remote(out):
    return out
  local = paths.local_cache(out)
  wanted = paths.read_bytes(paths.join(out, "metadata.json"))
  mine = os.path.join(local, "metadata.json")
  if os.path.isfile(mine) and paths.read_bytes(mine) == wanted:
    return local
  # Into a directory of this process, renamed into place: processes of one host may race here.
  staging = f"{local}.tmp-{os.getpid()}"
  shutil.rmtree(staging, ignore_errors=True)
  with storage_errors(f"copying the prepared data {out} to {local}"):
    paths.download_dir(out, staging)
  shutil.rmtree(local, ignore_errors=True)
  try:
    os.replace(staging, local)
  except OSError:  # another process of this host put its copy there first
    shutil.rmtree(staging, ignore_errors=True)
  return local


def ensure_prepared(config, workdir: str, task_packing: str, tokenizer_type: str = "wordpiece") -> str:
  """Runs `prepare` when the run's data is not prepared yet (or another mixture is); returns the
  local directory to read it from (`data.prepared_dir`, or a remote one's local copy).

  Args:
    config: the run config.
    workdir: the run's workdir (prepared data defaults to WORKDIR/data).
    task_packing: the packing of the run's task (see `packing`).
    tokenizer_type: the tokenizer to train when there is none to load (`registry.tokenizer_type`).

  Returns:
    The prepared directory (local).
  """
  from jaxpretrain.data.pretrain import prepare as prepare_lib

  out = prepared_dir(config, workdir)
  rows = packing(config, task_packing)
  if _reusable(config, out):
    # Data packed for another objective would train silently on the wrong rows.
    have = prepare_lib.load_metadata(out).get("options", {}).get("packing", "bert")
    if have != rows:
      raise UserError(
        f"prepared data in {out} is packed for {have} (data.packing), this run needs "
        f"{rows}; use another data.prepared_dir"
      )
    _check_tokenizer_type(config, out, tokenizer_type)
  else:
    if jax.process_index() == 0:
      prepare_from_config(config, out, rows, progress=config.train.progress, tokenizer_type=tokenizer_type)
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils

      multihost_utils.sync_global_devices("jaxpretrain:prepare")
  return _local_copy(out)


def _reusable(config, out: str) -> bool:
  """Whether `out` holds this run's data: complete, and the same mixture (or, as ever, any single source)."""
  from jaxpretrain.data.pretrain import prepare as prepare_lib

  sources = mixture_sources(config)  # bad weights fail here, before anything is written
  if not prepare_lib.is_prepared(out, config.data.seq_len, None):
    return False
  metadata = prepare_lib.load_metadata(out)
  return mixture.matches(metadata, sources) if sources is not None else not metadata.get("mixture")


def build_pretraining(config, workdir: str, task_packing: str, tokenizer_type: str = "wordpiece") -> RunData:
  """Prepared shards → grain iterators for MLM / causal-LM pretraining.

  Args:
    config: the run config.
    workdir: the run's workdir (prepared data defaults to WORKDIR/data).
    task_packing: the packing of the run's task (see `packing`).
    tokenizer_type: the tokenizer to train when there is none to load (`registry.tokenizer_type`).

  Returns:
    The run's `RunData`.
  """
  from jaxpretrain.data.pretrain import loader
  from jaxpretrain.data.pretrain import prepare as prepare_lib
  from jaxpretrain.data.tokenizer import Tokenizer

  out = ensure_prepared(config, workdir, task_packing, tokenizer_type)
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
  short = _short_of_eval_batch(out, meta, eval_size)
  has_eval = short is None
  if not has_eval:
    warn(f"{short}: no evaluation will run (raise data.eval_fraction or lower eval.batch_size)")

  def eval_batches():
    if not has_eval:
      return []
    it = iter(loader.make_dataset(out, "eval", global_batch_size=eval_size, seed=0, shuffle=False, repeat=True, **kw))
    return [next(it) for _ in range(config.eval.batches)]

  # A mixture's epoch is as many rows as its sources hold together (each is repeated or cut by its weight).
  steps_per_epoch = max(loader.epoch_size(out, "train") // config.train.batch_size, 1)
  info = {"special_ids": tokenizer.special_ids, "prepared_dir": prepared_dir(config, workdir)}
  step_tokens = None
  if meta.get("mixture"):
    info["mixture"] = mixture.describe(meta, config.train.batch_size)
    step_tokens = _step_tokens(out, meta, config)
  return RunData(
    train=iter(train),
    eval_batches=eval_batches,
    steps_per_epoch=steps_per_epoch,
    tokenizer=tokenizer,
    seq_len=config.data.seq_len,
    info=info,
    step_tokens=step_tokens,
  )


def _short_of_eval_batch(out: str, meta: dict, eval_size: int) -> str | None:
  """Why the held-out split cannot fill one eval batch without repeating a row, or None if it can."""
  from jaxpretrain.data.pretrain import loader

  if not meta.get("mixture"):
    held_out = loader.epoch_size(out, "eval")
    if held_out >= eval_size:
      return None
    return f"the held-out split has {held_out} examples, fewer than one eval batch of {eval_size}"
  rows = mixture.batch_rows([s["weight"] for s in meta["sources"]], eval_size)
  short = [
    f"{s['name']} has {s['splits']['eval']['records']} for its {r} rows"
    for s, r in zip(meta["sources"], rows)
    if s["splits"]["eval"]["records"] < r
  ]
  return f"the held-out split is short of one eval batch of {eval_size} ({'; '.join(short)})" if short else None


def _step_tokens(out: str, meta: dict, config):
  """step -> {"tokens/<source name>": non-padding tokens of that source in the global batch of `step`}."""
  from jaxpretrain.data.pretrain import loader

  names = [f"tokens/{s['name']}" for s in meta["sources"]]
  tokens = loader.source_tokens(out, global_batch_size=config.train.batch_size, seed=config.train.seed)
  return lambda step: dict(zip(names, tokens(step)))


def _check_tokenizer_type(config, out: str, want: str) -> None:
  """Refuses prepared data whose trained tokenizer is of another type than `data.tokenizer_type`
  says (with `auto`, notes it and keeps it); data prepared with a given tokenizer passes."""
  from jaxpretrain.data.pretrain import prepare as prepare_lib

  options = prepare_lib.load_metadata(out).get("options", {})
  if config.data.tokenizer or options.get("tokenizer_dir") != "":
    return  # a given tokenizer, loaded as it is (a mixture's options name none)
  have = options.get("tokenizer_type", "wordpiece")
  if have == want:
    return
  if config.data.get("tokenizer_type", "auto") != "auto":
    raise UserError(
      f"prepared data in {out} has a {have} tokenizer, this run trains {want} (data.tokenizer_type); "
      "use another data.prepared_dir"
    )
  warn(f"prepared data in {out} has a {have} tokenizer (task.name={config.task.name} would train {want}): using it")
