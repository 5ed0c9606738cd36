"""The training driver: one function, `run`, reading top to bottom in phases.

devices & mesh → data → model + task → optimizer → state (restore, warm start or init) →
compile → loop (step, log, eval, checkpoint) → final save and summary.
Pretraining and fine-tuning both come through here; only the task and its data differ.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxpretrain import __version__
from jaxpretrain import checkpoint as checkpoint_lib
from jaxpretrain import config as config_lib
from jaxpretrain.errors import UserError
from jaxpretrain.train.metrics import MetricsWriter
from jaxpretrain.models.config import ModelConfig
from jaxpretrain.parallel import strategy as strategy_lib
from jaxpretrain.tasks import registry
from jaxpretrain.train import optim
from jaxpretrain.train.prefetch import Prefetcher
from jaxpretrain.train.preemption import PreemptionWatcher
from jaxpretrain.train.state import TrainState


def total_steps(config, steps_per_epoch: int) -> int:
  """`train.steps`, or `train.num_epochs` × steps per epoch when num_epochs > 0."""
  if config.train.num_epochs > 0:
    return max(1, math.ceil(config.train.num_epochs * steps_per_epoch))
  return config.train.steps


def validate(config) -> None:
  """Config checks that need no data: one-line errors before anything is written."""
  positions = config.model.max_position_embeddings - config.model.get("position_offset", 0)
  if config.data.seq_len > positions:
    raise UserError(f"data.seq_len={config.data.seq_len} exceeds the model's {positions} positions "
                    f"(model.max_position_embeddings - model.position_offset)")
  if config.train.batch_size <= 0 or config.train.steps < 0:
    raise UserError("train.batch_size must be positive and train.steps non-negative")
  if config.train.grad_accum_steps < 1 or config.train.batch_size % config.train.grad_accum_steps:
    raise UserError(f"train.batch_size={config.train.batch_size} is not divisible by "
                    f"train.grad_accum_steps={config.train.grad_accum_steps}")
  if config.task.max_predictions < 0:
    raise UserError(f"task.max_predictions={config.task.max_predictions} must be >= 0 (0 = automatic)")
  if config.train.on_nonfinite not in ("raise", "skip"):
    raise UserError(f"train.on_nonfinite={config.train.on_nonfinite!r}; choose raise or skip")


def evaluate(state, eval_step, strategy, batches, seed: int) -> dict:
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


def run(config, workdir: str) -> dict:
  """Trains (pretraining or fine-tuning) as `config` says, resuming from WORKDIR if it has checkpoints.

  Args:
    config: a full config (see `config.defaults`).
    workdir: the run directory (created; config.json, metrics.jsonl, tb/, checkpoints/ inside).

  Returns:
    A summary dict: final step, last train metrics, last eval metrics, throughput.
  """
  # Phase 0: validate everything that needs no data, before writing anything.
  if config.init_from.startswith("hf:"):
    from jaxpretrain.hf import apply_hf_config  # model dims and tokenizer come from the HF directory
    apply_hf_config(config)
  validate(config)
  model_config = ModelConfig.from_config(config.model)

  # Phase 1: devices & mesh.
  strategy = strategy_lib.create(config.mesh)
  strategy.check_batch_size(config.train.batch_size, grad_accum_steps=config.train.grad_accum_steps)
  if config.eval.batch_size:
    strategy.check_batch_size(config.eval.batch_size, "eval.batch_size")
  strategy.check_model(model_config)

  # Phase 2: data (prepares the corpus on first use).
  data = registry.build_data(config, workdir)

  # Phase 3: model + task.
  task = registry.build_task(config, model_config, data)
  steps = total_steps(config, data.steps_per_epoch)

  # Phase 4: optimizer.
  tx, schedule = optim.make_optimizer(config.train, steps)

  def make_state(params, rng):
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), rng=rng,
                      skipped=jnp.zeros((), jnp.int32), task=task, tx=tx, schedule=schedule,
                      grad_accum_steps=config.train.grad_accum_steps,
                      skip_nonfinite=config.train.on_nonfinite == "skip")

  # Phase 5: state — restore the latest checkpoint, else warm-start from init_from, else init.
  init_rng = jax.random.PRNGKey(config.train.seed)
  state = strategy.init_state(make_state, lambda r: task.init(r, data.seq_len), init_rng)
  ckpt = checkpoint_lib.Checkpointer(workdir, keep=config.checkpoint.keep, async_save=config.checkpoint.async_save,
                                     best_metric=config.eval.metric if config.eval.every_steps else "",
                                     best_mode=config.eval.metric_mode)
  abstract = checkpoint_lib.abstract_arrays(state.arrays(), strategy.state_shardings.arrays())
  restored = ckpt.restore_latest(abstract)
  latest = restored[0] if restored else None
  if restored:
    _, arrays, saved_data_state, _ = restored
    state = state.replace_arrays(arrays)
    if saved_data_state is not None and hasattr(data.train, "set_state"):
      data.train.set_state(saved_data_state)
  elif config.init_from:
    from jaxpretrain.train import warm_start
    state = warm_start.apply(config, state, strategy)
  if jax.process_index() == 0:
    os.makedirs(workdir, exist_ok=True)
    config_lib.save(config, os.path.join(workdir, "config.json"))
    data.tokenizer.save(os.path.join(workdir, "tokenizer"))
    with open(os.path.join(workdir, "data_info.json"), "w") as f:
      json.dump(data.info, f, indent=2)
  tokenizer_files = checkpoint_lib.tokenizer_files(os.path.join(workdir, "tokenizer")) if jax.process_index() == 0 else {}

  # Phase 6: compile the step functions once.
  train_step = strategy.compile_train_step()
  eval_step = strategy.compile_eval_step()
  eval_batches = data.eval_batches()
  base_rng = np.asarray(jax.device_get(state.rng))

  # Phase 7: the loop.
  first_step = int(jax.device_get(state.step))
  writer = MetricsWriter(workdir, total_steps=steps, initial_step=first_step, progress=config.train.progress)
  prefetcher = Prefetcher(data.train, strategy.put_batch, depth=config.data.prefetch)
  tokens_per_step = config.train.batch_size * data.seq_len
  pending_finite: list[tuple[int, jax.Array]] = []
  last_train, last_eval, data_state = {}, {}, None
  interval_start, interval_steps, wait_at_start = time.perf_counter(), 0, 0.0
  compile_start = time.perf_counter()
  compile_seconds = None

  def check_finite():
    if config.train.on_nonfinite == "raise":
      for s, flag in pending_finite:
        if not bool(flag):
          raise UserError(f"non-finite loss or gradient at step {s}; no checkpoint was written for it "
                          f"(set train.on_nonfinite=skip to skip such updates)")
    pending_finite.clear()

  def save(step, metrics):
    check_finite()
    meta = {"version": __version__, "step": step, "time": time.time(), "metrics": metrics,
            "mesh": dict(strategy.mesh.shape) if hasattr(strategy, "mesh") else {},
            "config": config_lib.to_dict(config), "data_info": data.info}
    ckpt.save(step, state.arrays(), data_state=data_state, tokenizer_files=tokenizer_files, meta=meta,
              metrics=metrics or None)

  preempted = False
  watcher = PreemptionWatcher().__enter__()
  try:
    for step in range(first_step, steps):
      batch, data_state = prefetcher.next()
      rng = jax.random.fold_in(base_rng, step)
      state, metrics = train_step(state, batch, rng)
      pending_finite.append((step + 1, metrics["finite"]))
      interval_steps += 1
      done = step + 1
      if compile_seconds is None:
        jax.block_until_ready(metrics["loss"])
        compile_seconds = time.perf_counter() - compile_start
        interval_start, interval_steps, wait_at_start = time.perf_counter(), 0, prefetcher.wait_seconds
      if done % config.train.log_every == 0 or done == steps:
        check_finite()
        host = {k: float(v) for k, v in jax.device_get(metrics).items() if k != "finite"}
        elapsed = time.perf_counter() - interval_start
        if interval_steps:
          host["tokens_per_s"] = tokens_per_step * interval_steps / max(elapsed, 1e-9)
          host["data_wait_share"] = (prefetcher.wait_seconds - wait_at_start) / max(elapsed, 1e-9)
        last_train = host
        writer.write(done, host)
        writer.progress(done, {"loss": host["loss"], "tok/s": round(host.get("tokens_per_s", 0.0)),
                               "data_wait": f"{host.get('data_wait_share', 0.0):.0%}"})
        interval_start, interval_steps, wait_at_start = time.perf_counter(), 0, prefetcher.wait_seconds
      else:
        writer.progress(done)
      paused = False  # evaluation and saving do not count against training throughput
      if config.eval.every_steps and done % config.eval.every_steps == 0 and done != steps:
        last_eval = evaluate(state, eval_step, strategy, eval_batches, config.train.seed)
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
        interval_start, interval_steps, wait_at_start = time.perf_counter(), 0, prefetcher.wait_seconds

    # Phase 8: final evaluation, save and summary.
    final_step = int(jax.device_get(state.step))
    if eval_batches and not preempted:
      last_eval = evaluate(state, eval_step, strategy, eval_batches, config.train.seed)
      writer.write(final_step, last_eval, split="eval")
    if (final_step > first_step or latest is None) and not preempted:
      save(final_step, last_eval or {})
    ckpt.wait()
  finally:
    watcher.__exit__()
    prefetcher.close()
    writer.close()
    ckpt.close(raise_errors=sys.exc_info()[0] is None)
  return {"step": final_step, "preempted": preempted, "train": last_train, "eval": last_eval, "compile_s": compile_seconds,
          "steps_per_epoch": data.steps_per_epoch}
