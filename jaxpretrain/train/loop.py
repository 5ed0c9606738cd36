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

from jaxpretrain import __version__
from jaxpretrain import checkpoint as checkpoint_lib
from jaxpretrain import config as config_lib
from jaxpretrain.errors import UserError
from jaxpretrain.models.config import ModelConfig
from jaxpretrain.parallel import strategy as strategy_lib
from jaxpretrain.tasks import registry
from jaxpretrain.train.metrics import MetricsWriter
from jaxpretrain.train.preemption import PreemptionWatcher
from jaxpretrain.train.prefetch import Prefetcher
from jaxpretrain.train.state import TrainState


def total_steps(config, steps_per_epoch: int) -> int:
  """`train.steps`, or `train.num_epochs` × steps per epoch when num_epochs > 0."""
  if config.train.num_epochs > 0:
    return max(1, math.ceil(config.train.num_epochs * steps_per_epoch))
  return config.train.steps


def validate(config) -> None:
  """Config checks that need no data: one-line errors before anything is written (see `config_schema`)."""
  from jaxpretrain import config_schema

  config_schema.validate(config)


def evaluate_batches(state, eval_step, strategy, batches, seed: int) -> dict:
  """Task metrics over a fixed list of eval batches (fixed masking RNG, no dropout)."""
  aux_total = None
  for i, batch in enumerate(batches):
    rng = jax.random.fold_in(jax.random.PRNGKey(seed + 1), i)
    aux = eval_step(state, strategy.put_batch(batch), strategy.put_replicated(rng))
    aux_total = aux if aux_total is None else jax.tree.map(jnp.add, aux_total, aux)
  if aux_total is None:
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


class Throughput:
  """Training tokens/s and the share of time spent waiting for data, since the last `restart`.

  The loop restarts it after compilation, after every logged row and after evaluating or saving,
  so that only training steps count.
  """

  def __init__(self, tokens_per_step: int, prefetcher: Prefetcher):
    self.tokens_per_step, self.prefetcher = tokens_per_step, prefetcher
    self.restart()

  def restart(self) -> None:
    self.start, self.steps, self.wait_at_start = time.perf_counter(), 0, self.prefetcher.wait_seconds

  def count(self) -> None:
    """One more training step."""
    self.steps += 1

  def rates(self) -> dict:
    """`tokens_per_s` and `data_wait_share` since the restart ({} before any step)."""
    if not self.steps:
      return {}
    elapsed = max(time.perf_counter() - self.start, 1e-9)
    return {
      "tokens_per_s": self.tokens_per_step * self.steps / elapsed,
      "data_wait_share": (self.prefetcher.wait_seconds - self.wait_at_start) / elapsed,
    }


def check_config(config) -> ModelConfig:
  """Phase 0: validates everything that needs no data, before anything is written.

  With `init_from=hf:PATH` the model dims and tokenizer first come from the HF directory.

  Returns:
    The ModelConfig of `config.model`.
  """
  if config.init_from.startswith("hf:"):
    from jaxpretrain.hf import apply_hf_config

    apply_hf_config(config)
  validate(config)
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


def _restore(config, state, strategy, ckpt, data):
  """Phase 5: the latest checkpoint (with the data iterator's position), else the `init_from`
  warm start, else `state` as it is. Returns (state, the step restored or None)."""
  abstract = checkpoint_lib.abstract_arrays(state.arrays(), strategy.state_shardings.arrays())
  restored = ckpt.restore_latest(abstract)
  if restored:
    step, arrays, saved_data_state, _ = restored
    if saved_data_state is not None and hasattr(data.train, "set_state"):
      data.train.set_state(saved_data_state)
    return state.replace_arrays(arrays), step
  if config.init_from:
    from jaxpretrain.train import warm_start

    state = warm_start.apply(config, state, strategy)
  return state, None


def _write_run_files(config, workdir: str, data) -> dict:
  """config.json, tokenizer/ and data_info.json (process 0); returns the tokenizer's files."""
  if jax.process_index() != 0:
    return {}
  os.makedirs(workdir, exist_ok=True)
  config_lib.save(config, os.path.join(workdir, "config.json"))
  data.tokenizer.save(os.path.join(workdir, "tokenizer"))
  with open(os.path.join(workdir, "data_info.json"), "w") as f:
    json.dump(data.info, f, indent=2)
  return checkpoint_lib.tokenizer_files(os.path.join(workdir, "tokenizer"))


def setup(config, workdir: str) -> Run:
  """Phases 0-6: everything before the first step.

  Validates, builds the strategy, the data (preparing the corpus on first use), the task and the
  state; restores WORKDIR's latest checkpoint or warm-starts from `init_from`; writes config.json,
  tokenizer/ and data_info.json; wraps the step functions (they compile on their first call).

  Args:
    config: a full config (see `config.defaults`).
    workdir: the run directory.

  Returns:
    The `Run`; its checkpointer is open (`train` closes it).
  """
  model_config = check_config(config)
  strategy = create_strategy(config, model_config)
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
    state, restored_step = _restore(config, state, strategy, ckpt, data)
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
    )
  except BaseException:
    ckpt.close(raise_errors=False)
    raise


def train(run: Run) -> dict:
  """Phases 7-8: the loop (step, log, evaluate, checkpoint, stop when preempted), then the final
  evaluation and save. Closes the run's checkpointer.

  Args:
    run: from `setup`.

  Returns:
    A summary dict: final step, whether preempted, last train and eval metrics, compile time.
  """
  config, strategy, data, ckpt, steps = run.config, run.strategy, run.data, run.checkpointer, run.total_steps
  state = run.state
  base_rng = np.asarray(jax.device_get(state.rng))
  first_step = int(jax.device_get(state.step))
  writer = MetricsWriter(run.workdir, total_steps=steps, initial_step=first_step, progress=config.train.progress)
  prefetcher = Prefetcher(data.train, strategy.put_batch, depth=config.data.prefetch)
  throughput = Throughput(config.train.batch_size * data.seq_len, prefetcher)
  pending_finite: list[tuple[int, jax.Array]] = []
  last_train, last_eval, data_state = {}, {}, None
  compile_start = time.perf_counter()
  compile_seconds = None

  def check_finite():
    if config.train.on_nonfinite == "raise":
      for s, flag in pending_finite:
        if not bool(flag):
          raise UserError(
            f"non-finite loss or gradient at step {s}; no checkpoint was written for it "
            f"(set train.on_nonfinite=skip to skip such updates)"
          )
    pending_finite.clear()

  def save(step, metrics):
    check_finite()
    meta = {
      "version": __version__,
      "step": step,
      "time": time.time(),
      "metrics": metrics,
      "mesh": dict(strategy.mesh.shape) if hasattr(strategy, "mesh") else {},
      "config": config_lib.to_dict(config),
      "data_info": data.info,
    }
    ckpt.save(
      step,
      state.arrays(),
      data_state=data_state,
      tokenizer_files=run.tokenizer_files,
      meta=meta,
      metrics=metrics or None,
    )

  preempted = False
  try:
    with PreemptionWatcher() as watcher:
      for step in range(first_step, steps):
        batch, data_state = prefetcher.next()
        state, metrics = run.train_step(state, batch, jax.random.fold_in(base_rng, step))
        pending_finite.append((step + 1, metrics["finite"]))
        throughput.count()
        done = step + 1
        if compile_seconds is None:
          jax.block_until_ready(metrics["loss"])
          compile_seconds = time.perf_counter() - compile_start
          throughput.restart()
        if done % config.train.log_every == 0 or done == steps:
          check_finite()
          host = {k: float(v) for k, v in jax.device_get(metrics).items() if k != "finite"}
          host.update(throughput.rates())
          last_train = host
          writer.write(done, host)
          writer.progress(
            done,
            {
              "loss": host["loss"],
              "tok/s": round(host.get("tokens_per_s", 0.0)),
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
      if run.eval_batches and not preempted:
        last_eval = evaluate_batches(state, run.eval_step, strategy, run.eval_batches, config.train.seed)
        writer.write(final_step, last_eval, split="eval")
      if (final_step > first_step or run.restored_step is None) and not preempted:
        save(final_step, last_eval or {})
      ckpt.wait()
  finally:
    prefetcher.close()
    writer.close()
    ckpt.close(raise_errors=sys.exc_info()[0] is None)
  return {
    "step": final_step,
    "preempted": preempted,
    "train": last_train,
    "eval": last_eval,
    "compile_s": compile_seconds,
    "steps_per_epoch": data.steps_per_epoch,
  }


def run(config, workdir: str) -> dict:
  """Trains (pretraining or fine-tuning) as `config` says, resuming from WORKDIR if it has checkpoints.

  Args:
    config: a full config (see `config.defaults`).
    workdir: the run directory (created; config.json, metrics.jsonl, tb/, checkpoints/ inside).

  Returns:
    A summary dict: final step, last train metrics, last eval metrics, throughput.
  """
  return train(setup(config, workdir))
