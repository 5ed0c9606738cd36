"""The training driver: `run` = `setup` then `train`, each reading top to bottom in phases.

`setup`: validate → devices & mesh → data → model + task → optimizer and state (restore, warm
start or init) → compile. `train`: loop (step, log, eval, checkpoint) → final save and summary.
Pretraining and fine-tuning both come through here; only the task and its data differ. The phase
functions (`check_config`, `create_strategy`, `init_state`) also serve `bench` and the demo sweep.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxpretrain import __version__, paths
from jaxpretrain import checkpoint as checkpoint_lib
from jaxpretrain import config as config_lib
from jaxpretrain.checkpoint import manager as checkpoint_manager
from jaxpretrain.errors import UserError, storage_errors, warn
from jaxpretrain.models.config import ModelConfig
from jaxpretrain.parallel import strategy as strategy_lib
from jaxpretrain.tasks import registry
from jaxpretrain.train import cache, flops, optim, peak, profiling, run_lock, tracking
from jaxpretrain.train.metrics import MetricsWriter, read_metrics
from jaxpretrain.train.preemption import PreemptionWatcher, stop_before_training
from jaxpretrain.train.prefetch import Prefetcher
from jaxpretrain.train.state import TrainState
from jaxpretrain.train.throughput import Throughput


def total_steps(config, steps_per_epoch: int) -> int:
  """`train.steps`, or `train.num_epochs` × steps per epoch when num_epochs > 0."""
  if config.train.num_epochs > 0:
    return max(1, math.ceil(config.train.num_epochs * steps_per_epoch))
  return config.train.steps


def check_schedule(config, steps: int) -> None:
  """Warns (once, at the start of a run) about a schedule that cannot do what the config suggests.

  Args:
    config: the run config.
    steps: the run's optimizer steps (`total_steps`).
  """
  tr = config.train
  if tr.num_epochs > 0 and "train.steps" in config.overridden_keys:
    warn(
      f"train.steps={tr.steps} is ignored: train.num_epochs={tr.num_epochs:g} sets the run's length ({steps} steps); "
      "set train.num_epochs=0 to train for train.steps"
    )
  warmup = optim.warmup_steps(tr, steps)
  if steps > 0 and warmup >= steps:
    given = (
      f"train.warmup_ratio={tr.warmup_ratio:g}" if tr.warmup_ratio > 0 else f"train.warmup_steps={tr.warmup_steps}"
    )
    warn(
      f"{given} covers all of the run's {steps} steps: the learning rate never reaches "
      f"train.learning_rate={tr.learning_rate:g}; use fewer warmup steps or train.warmup_ratio (e.g. 0.1)"
    )


def validate(config) -> None:
  """Config checks that need no data: one-line errors before anything is written (see `config_schema`)."""
  from jaxpretrain import config_schema

  config_schema.validate(config)


def summed_eval_aux(state, eval_step, strategy, batches, seed: int) -> dict:
  """The task's eval aux (loss sums, counts, a confusion matrix, ...) summed over `batches`.

  Args:
    state: the TrainState to evaluate.
    eval_step: the strategy's compiled eval step.
    strategy: the run's strategy.
    batches: the eval batches (host numpy); batch i is masked with fold_in(PRNGKey(seed + 1), i).
    seed: `train.seed`.

  Returns:
    The summed aux (device arrays), {} without batches.
  """
  total = None
  for i, batch in enumerate(batches):
    rng = jax.random.fold_in(jax.random.PRNGKey(seed + 1), i)
    aux = eval_step(state, strategy.put_batch(batch), strategy.put_replicated(rng))
    total = aux if total is None else jax.tree.map(jnp.add, total, aux)
  return total or {}


def evaluate_batches(state, eval_step, strategy, batches, seed: int) -> dict:
  """Task metrics over a fixed list of eval batches (fixed masking RNG, no dropout)."""
  aux_total = summed_eval_aux(state, eval_step, strategy, batches, seed)
  if not aux_total:
    return {}
  metrics = state.task.metrics(aux_total)
  return {k: float(v) for k, v in jax.device_get(metrics).items()}


@dataclasses.dataclass
class Run:
  """What `setup` hands to `train`: a run's pieces, initialized, restored and ready to step."""

  config: Any
  workdir: str
  strategy: Any
  data: Any  # the RunData of `registry.build_data`
  state: TrainState
  total_steps: int
  checkpointer: checkpoint_lib.Checkpointer
  restored_step: int | None  # the checkpoint resumed from; None for a fresh run
  train_step: Callable
  eval_step: Callable
  eval_batches: list  # `data.eval_batches()`, fixed for the whole run
  tokenizer_files: dict  # saved inside every checkpoint (process 0's; empty elsewhere)
  fingerprint: dict = dataclasses.field(default_factory=dict)  # what the run trains on (`fingerprint`)
  data_changes: list = dataclasses.field(default_factory=list)  # continuations on changed data, saved in meta
  restored_meta: dict = dataclasses.field(default_factory=dict)  # the meta of the restored checkpoint
  lock: run_lock.WorkdirLock | None = None  # WORKDIR/.lock, held by process 0 until `train` ends

  @property
  def finished(self) -> bool:
    """Resumed from a checkpoint at or past the run's last step: nothing to train."""
    return self.restored_step is not None and self.restored_step >= self.total_steps


def check_config(config) -> ModelConfig:
  """Phase 0: validates everything that needs no data, before anything is written.

  With `init_from` the architecture (model dims, positions) and tokenizer first come from the
  source: a pretraining workdir's config.json, or the HF directory's.

  Returns:
    The ModelConfig of `config.model`.
  """
  if config.init_from.startswith("hf:"):
    from jaxpretrain.hf import apply_hf_config

    apply_hf_config(config)
  elif config.init_from:
    from jaxpretrain.checkpoint.init_from import apply_run_config

    apply_run_config(config)
  validate(config)
  tracking.check(config)
  return ModelConfig.from_config(config.model)


def create_strategy(config, model_config: ModelConfig):
  """Phase 1: the strategy of `config.mesh`, once the batch sizes and the model's dims divide over it."""
  strategy = strategy_lib.create(config.mesh)
  strategy.check_batch_size(config.train.batch_size, grad_accum_steps=config.train.grad_accum_steps)
  if config.eval.batch_size:
    strategy.check_batch_size(config.eval.batch_size, "eval.batch_size")
  strategy.check_model(model_config)
  return strategy


def init_state(config, strategy, task, seq_len: int, steps: int) -> TrainState:
  """Phases 4-5: the optimizer and a fresh TrainState, created directly in its sharded layout.

  Args:
    config: the run config (`train.*`; `train.seed` seeds the parameters).
    strategy: from `create_strategy`.
    task: the run's Task.
    seq_len: tokens per example (the parameter shapes may depend on it).
    steps: optimizer steps of the run (the schedule's length).

  Returns:
    The step-0 state.
  """
  return strategy.init_state(
    TrainState.create(config, task, steps), lambda rng: task.init(rng, seq_len), jax.random.PRNGKey(config.train.seed)
  )


def fingerprint(config, tokenizer=None) -> dict:
  """What a run trains on, saved in every checkpoint's meta and compared on resume.

  Args:
    config: the run config (`data.train`, `data.seq_len`, the packing of `data.packing`; for a
      fine-tuning task `data.length_grouping`, which orders its batches).
    tokenizer: the run's tokenizer; None leaves its fingerprint out (before the data is built).

  Returns:
    {"data.train", "data.seq_len", "data.packing"[, "data.length_grouping"][, "tokenizer"]: value}.
  """
  fp = {
    "data.train": config.data.train,
    "data.seq_len": int(config.data.seq_len),
    "data.packing": registry.packing(config),
  }
  if registry.spec(config.task.name).labeled is not None:
    fp["data.length_grouping"] = int(config.data.length_grouping)
  if tokenizer is not None:
    fp["tokenizer"] = tokenizer.fingerprint()
  return fp


def _saved_total_steps(meta: dict) -> int | None:
  """The schedule length of a saved run: its meta's `total_steps`, else (older runs) `train.steps`."""
  if meta.get("total_steps") is not None:
    return int(meta["total_steps"])
  train_config = meta.get("config", {}).get("train", {})
  if train_config.get("num_epochs", 0) == 0 and train_config.get("steps") is not None:
    return int(train_config["steps"])
  return None


def check_resume(
  config, meta: dict, step: int, current: dict, *, total: int | None = None, errors_only: bool = False
) -> list[dict]:
  """Compares a checkpoint's meta with the run about to resume from it, before any training.

  A changed data source, tokenizer, `data.seq_len`, packing or fine-tuning batch order
  (`data.length_grouping`), all in the meta's `fingerprint`, or a changed `train.batch_size`, each
  of which reinterprets the saved data position, is a one-line error naming what changed, unless
  `train.allow_data_change` is set (then a warning). A changed schedule length is a warning naming
  old and new total steps. Checkpoints without a fingerprint (older versions) compare only what
  their saved config says.

  Args:
    config: the run config.
    meta: the checkpoint's `meta` item.
    step: the checkpoint's step.
    current: `fingerprint(config, ...)` of this run (keys missing on either side are not compared).
    total: this run's total steps; None skips the schedule check.
    errors_only: raise what is an error, but warn about nothing (an early check; the full one follows).

  Returns:
    The run's record of deliberate continuations: the meta's `data_changes`, plus this one if any.

  Raises:
    UserError: something changed and `train.allow_data_change` is false.
  """
  saved = meta.get("fingerprint") or {}
  compared = ("data.train", "data.seq_len", "data.packing", "data.length_grouping", "tokenizer")
  changed = [k for k in compared if k in saved and k in current]
  changed = [k for k in changed if saved[k] != current[k]]
  problems = []
  if changed:
    keys = [k for k in changed if k != "tokenizer"] or ["data.train"]
    problems.append(f"it was trained on {_describe(saved, keys)}, the config now says {_describe(current, keys)}")
  saved_batch = meta.get("config", {}).get("train", {}).get("batch_size")
  if saved_batch is not None and saved_batch != config.train.batch_size:
    problems.append(
      f"it was trained with train.batch_size={saved_batch}, the config now says {config.train.batch_size} "
      f"(the saved data position counts batches of {saved_batch})"
    )
  where = f"this run (checkpoint step {step})"
  if problems and not config.train.allow_data_change:
    raise UserError(
      f"{where}: {'; '.join(problems)}; resume with the run's settings, use another --workdir, or set "
      f"train.allow_data_change=true to continue on purpose"
    )
  changes = list(meta.get("data_changes") or [])
  if errors_only:
    return changes
  if problems:
    warn(f"train.allow_data_change=true: {where} continues although {'; '.join(problems)}")
    changes.append({"step": step, "changes": "; ".join(problems)})
  saved_total = _saved_total_steps(meta)
  if total is not None and saved_total is not None and saved_total != total and step < total:
    warn(
      f"resuming at step {step} with {total} total steps where the run had {saved_total}: the learning-rate "
      f"schedule (warmup, then {config.train.schedule}) is re-stretched over {total} steps"
    )
  return changes


def _describe(fp: dict, keys: list[str]) -> str:
  text = ", ".join(f"{k}={fp[k]}" for k in keys)
  return text + (f" (tokenizer {fp['tokenizer']})" if "tokenizer" in fp else "")


def _restore(config, state, strategy, ckpt, data):
  """Phase 5: the latest checkpoint (with the data iterator's position), else the `init_from`
  warm start, else `state` as it is. Returns (state, the step restored or None, its meta or {})."""
  abstract = checkpoint_lib.abstract_arrays(state.arrays(), strategy.state_shardings.arrays())
  restored = ckpt.restore_latest(abstract)
  if restored:
    step, arrays, saved_data_state, meta = restored
    if saved_data_state is not None and hasattr(data.train, "set_state"):
      data.train.set_state(saved_data_state)
    return state.replace_arrays(arrays), step, dict(meta or {})
  if config.init_from:
    from jaxpretrain.train import warm_start

    state = warm_start.apply(config, state, strategy)
  return state, None, {}


def _write_run_files(config, workdir: str, data) -> dict:
  """config.json, tokenizer/ and data_info.json (process 0); returns the tokenizer's files."""
  if jax.process_index() != 0:
    return {}
  with storage_errors(f"writing the run files (config.json, tokenizer/, data_info.json) in {workdir}"):
    paths.makedirs(workdir)
    config_lib.save(config, paths.join(workdir, "config.json"))
    with paths.staged(paths.join(workdir, "tokenizer")) as tokenizer_dir:  # a remote workdir: saved, then copied up
      data.tokenizer.save(tokenizer_dir)
      saved = checkpoint_lib.tokenizer_files(tokenizer_dir)
    paths.write_text(paths.join(workdir, "data_info.json"), json.dumps(data.info, indent=2))
  return saved


def setup(config, workdir: str) -> Run:
  """Phases 0-6: everything before the first step.

  Validates, takes WORKDIR/.lock (one run per workdir), builds the strategy, the data (preparing the
  corpus on first use), the task and the state; restores WORKDIR's latest checkpoint (refusing one
  trained on other data or with another batch size, see `check_resume`) or warm-starts from
  `init_from`; writes config.json, tokenizer/ and data_info.json; wraps the step functions (they
  compile on their first call).

  Args:
    config: a full config (see `config.defaults`).
    workdir: the run directory.

  Returns:
    The `Run`; its checkpointer is open and its lock held (`train` closes and releases them).
  """
  model_config = check_config(config)
  cache.enable_compilation_cache(config.train.compilation_cache_dir)  # before the first compilation
  registry.check_run(config, workdir)  # eval.metric against the task's metrics; the paths given
  strategy = create_strategy(config, model_config)
  lock = run_lock.acquire(workdir, jax.process_index())
  try:
    return _setup_locked(config, workdir, model_config, strategy, lock)
  except BaseException:
    if lock is not None:
      lock.release()
    raise


def _setup_locked(config, workdir: str, model_config, strategy, lock) -> Run:
  """`setup` once the workdir is locked: phases 2-6."""
  latest = checkpoint_manager.latest_meta(workdir)
  if latest is not None:  # a changed data source is an error before that source is prepared
    check_resume(config, latest[1], latest[0], fingerprint(config), errors_only=True)
  data = registry.build_data(config, workdir)
  task = registry.build_task(config, model_config, data)
  steps = total_steps(config, data.steps_per_epoch)
  state = init_state(config, strategy, task, data.seq_len, steps)
  ckpt = checkpoint_lib.Checkpointer(
    workdir,
    keep=config.checkpoint.keep,
    async_save=config.checkpoint.async_save,
    best_metric=config.eval.metric if config.eval.every_steps else "",
    best_mode=config.eval.metric_mode,
  )
  try:
    state, restored_step, restored_meta = _restore(config, state, strategy, ckpt, data)
    current = fingerprint(config, data.tokenizer)
    data_changes = []
    if restored_step is None:
      check_schedule(config, steps)
    else:
      data_changes = check_resume(config, restored_meta, restored_step, current, total=steps)
      where = os.path.join(checkpoint_lib.checkpoint_dir(workdir), str(restored_step))
      if restored_step >= steps:
        warn(
          f"the run in {workdir} is finished (checkpoint step {restored_step}, train.steps={steps}): nothing to do; "
          f"raise train.steps to train further",
          kind="note",
        )
      else:
        warn(f"resuming from step {restored_step} ({where})", kind="note")
    tokenizer_files = _write_run_files(config, workdir, data)
    return Run(
      config=config,
      workdir=workdir,
      strategy=strategy,
      data=data,
      state=state,
      total_steps=steps,
      checkpointer=ckpt,
      restored_step=restored_step,
      train_step=strategy.compile_train_step(),
      eval_step=strategy.compile_eval_step(),
      eval_batches=data.eval_batches(),
      tokenizer_files=tokenizer_files,
      fingerprint=current,
      data_changes=data_changes,
      restored_meta=restored_meta,
      lock=lock,
    )
  except BaseException:
    ckpt.close(raise_errors=False)
    raise


def train(run: Run) -> dict:
  """Phases 7-8: the loop (step, log, evaluate, checkpoint, stop when preempted), then the final
  evaluation and save. Closes the run's checkpointer and releases its workdir lock.

  metrics.jsonl first loses its rows after the step the run starts from (a resumed run logs them
  again). A finished run (resumed at or past its last step) trains, evaluates and saves nothing.
  With `train.on_nonfinite=skip` each skipped step is a note, and `train.max_consecutive_skips`
  skipped steps in a row stop the run with an error (no checkpoint is written after them).

  Args:
    run: from `setup`.

  Returns:
    A summary dict: final step, whether preempted, last train and eval metrics, compile time.
  """
  config, strategy, data, ckpt, steps = run.config, run.strategy, run.data, run.checkpointer, run.total_steps
  state = run.state
  base_rng = np.asarray(jax.device_get(state.rng))
  first_step = int(jax.device_get(state.step))
  # MFU's denominator, where rows are written (process 0); on CPU a measured ceiling, cached after the first run
  dtype = state.task.model_config.compute_dtype
  peak_flops = peak.peak_flops(dtype, config.train.peak_tflops)[0] if jax.process_index() == 0 else 0.0
  try:
    sinks = tracking.open_sinks(config, run.workdir)
  except BaseException:  # e.g. W&B cannot start: free the checkpointer and the workdir for the next attempt
    try:
      ckpt.close(raise_errors=False)
    finally:
      if run.lock is not None:
        run.lock.release()
    raise
  writer = MetricsWriter(
    run.workdir,
    total_steps=steps,
    initial_step=first_step,
    progress=config.train.progress,
    keep_until=first_step,
    sinks=sinks,
  )
  prefetcher = Prefetcher(data.train, strategy.put_batch, depth=config.data.prefetch)
  task = state.task
  throughput = Throughput(
    lambda: prefetcher.wait_seconds, lambda length: flops.task_flops_per_token(task, length), peak_flops
  )
  window = profiling.ProfileWindow(config.profile, run.workdir, first_step=first_step, total_steps=steps)
  pending_finite: list[tuple[int, jax.Array]] = []
  last_train, last_eval, data_state = {}, {}, None
  compile_start = time.perf_counter()
  compile_seconds = None
  last_saved = run.restored_step
  skips_in_a_row = 0

  def check_finite(upto: int | None = None):
    """Reads the pending steps' finite flags (all, or the first `upto`): raise, or note the skips."""
    nonlocal skips_in_a_row
    checked = pending_finite[: len(pending_finite) if upto is None else upto]
    for s, flag in checked:
      if bool(flag):
        skips_in_a_row = 0
        continue
      if config.train.on_nonfinite == "raise":
        raise UserError(
          f"non-finite loss or gradient at step {s}; no checkpoint was written for it "
          f"(set train.on_nonfinite=skip to skip such updates)"
        )
      skips_in_a_row += 1
      warn(f"non-finite loss or gradient at step {s}: update skipped ({skips_in_a_row} in a row)", kind="note")
      if skips_in_a_row >= config.train.max_consecutive_skips:
        kept = f"the latest checkpoint is step {last_saved}" if last_saved is not None else "no checkpoint was written"
        raise UserError(
          f"steps {s - skips_in_a_row + 1}-{s} all had a non-finite loss or gradient and were skipped "
          f"(train.max_consecutive_skips={config.train.max_consecutive_skips}); stopping: {kept}"
        )
    del pending_finite[: len(checked)]

  def save(step, metrics):
    nonlocal last_saved
    check_finite()
    meta = {
      "version": __version__,
      "step": step,
      "time": time.time(),
      "metrics": metrics,
      "mesh": dict(strategy.mesh.shape) if hasattr(strategy, "mesh") else {},
      "config": config_lib.to_dict(config),
      "data_info": data.info,
      "fingerprint": run.fingerprint,  # what the run was trained on: compared on resume
      "total_steps": steps,
      "data_changes": run.data_changes,
    }
    ckpt.save(
      step,
      state.arrays(),
      data_state=data_state,
      tokenizer_files=run.tokenizer_files,
      meta=meta,
      metrics=metrics or None,
    )
    last_saved = step

  preempted = False
  try:
    with PreemptionWatcher() as watcher:
      for step in range(first_step, steps):
        batch, data_state = prefetcher.next()
        with window.step(step + 1):
          state, metrics = run.train_step(state, batch, jax.random.fold_in(base_rng, step))
        window.finished(step + 1, metrics)
        pending_finite.append((step + 1, metrics["finite"]))
        if config.train.on_nonfinite == "skip" and len(pending_finite) > 1:
          check_finite(upto=len(pending_finite) - 1)  # the previous step's flag: counts skips without a stall
        throughput.count(batch["input_ids"])  # this step's positions: a length bucket's, if bucketed
        done = step + 1
        if compile_seconds is None:
          jax.block_until_ready(metrics["loss"])
          compile_seconds = time.perf_counter() - compile_start
          throughput.restart()
        if done % config.train.log_every == 0 or done == steps:
          check_finite()
          host = {k: float(v) for k, v in jax.device_get(metrics).items() if k != "finite"}
          host.update(throughput.rates())
          if not last_train:  # this attempt's first row: the first step's compile (or cache load) and run
            host["compile_s"] = compile_seconds
          if data.step_tokens is not None:  # a mixture: non-padding tokens of each source in this step's batch
            host.update(data.step_tokens(done - 1))
          last_train = host
          writer.write(done, host)
          writer.progress(
            done,
            {
              "loss": host["loss"],
              "tok/s": round(host.get("tokens_per_s", 0.0)),
              "TFLOP/s": f"{host.get('tflops', 0.0):.3g}",
              **({"MFU": f"{host['mfu']:.1%}"} if "mfu" in host else {}),
              "data_wait": f"{host.get('data_wait_share', 0.0):.0%}",
            },
          )
          throughput.restart()
        else:
          writer.progress(done)
        paused = False  # evaluation and saving do not count against training throughput
        if config.eval.every_steps and done % config.eval.every_steps == 0 and done != steps:
          last_eval = evaluate_batches(state, run.eval_step, strategy, run.eval_batches, config.train.seed)
          if last_eval:  # no rows when the eval split holds less than one batch
            writer.write(done, last_eval, split="eval")
          paused = True
        periodic = config.checkpoint.every_steps and done % config.checkpoint.every_steps == 0
        if watcher.should_stop(done) and done != steps:
          save(done, last_eval or {})
          preempted = True
          break
        if periodic and done != steps:
          save(done, last_eval or {})
          paused = True
        if paused:
          throughput.restart()

      # Phase 8: final evaluation, save and summary.
      final_step = int(jax.device_get(state.step))
      if run.finished:
        last_train = _last_train_row(run.workdir, final_step)
        last_eval = dict(run.restored_meta.get("metrics") or {})
      elif run.eval_batches and not preempted:
        last_eval = evaluate_batches(state, run.eval_step, strategy, run.eval_batches, config.train.seed)
        writer.write(final_step, last_eval, split="eval")
      if (final_step > first_step or run.restored_step is None) and not preempted:
        save(final_step, last_eval or {})
      ckpt.wait()
      if preempted:
        warn(
          f"stopped by {watcher.signal_name or 'a preemption notice (SIGTERM)'} after step {final_step}, saved in "
          f"{os.path.join(checkpoint_lib.checkpoint_dir(run.workdir), str(final_step))}; "
          "run the same command to resume",
          kind="note",
        )
  finally:
    window.close()
    prefetcher.close()
    writer.close()
    try:
      ckpt.close(raise_errors=sys.exc_info()[0] is None)
    finally:
      if run.lock is not None:
        run.lock.release()
  return {
    "step": final_step,
    "preempted": preempted,
    "train": last_train,
    "eval": last_eval,
    "compile_s": compile_seconds,
    "steps_per_epoch": data.steps_per_epoch,
  }


def _last_train_row(workdir: str, step: int) -> dict:
  """The last training row of metrics.jsonl at or before `step`, without its step ({} if none)."""
  rows = [r for r in read_metrics(workdir) if "split" not in r and r.get("step", step + 1) <= step]
  return {k: v for k, v in rows[-1].items() if k != "step"} if rows else {}


def run(config, workdir: str) -> dict:
  """Trains (pretraining or fine-tuning) as `config` says, resuming from WORKDIR if it has checkpoints.

  Args:
    config: a full config (see `config.defaults`).
    workdir: the run directory (created; config.json, metrics.jsonl, tb/, checkpoints/ inside).

  Returns:
    A summary dict: final step, last train metrics, last eval metrics, throughput.
  """
  with stop_before_training():
    prepared = setup(config, workdir)
  return train(prepared)
