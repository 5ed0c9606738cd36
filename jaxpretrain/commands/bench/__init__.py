"""`jaxpretrain bench`: training-step throughput of a config on synthetic batches, as one JSON line.

It builds the strategy, state and `train_step` with training's own setup pieces
(`train.loop.create_strategy` and `init_state`, `train.step`), compiles the step ahead of time
(compile_s), runs `warmup` steps, then times `steps` steps in `rounds` rounds and reports the
median round. Batches are random token ids in
full rows (one segment per row, no padding) placed on the devices beforehand, so the data
pipeline is not measured (`benchmarks/data_throughput.py` measures it). With
`compare="hf-torch"` the same model runs as its family's HF transformers PyTorch model
(`hf_torch.py`), the rounds alternating between the two so that a busy machine slows both alike.

Keys: layers, hidden, heads, mlp, vocab, seq, batch, step_ms, tokens_per_s, tflops, mfu,
compile_s, peak_memory_bytes (+ context: task, dtype, attention, remat, scan_layers, dropout,
device, flops_per_token, peak_tflops, peak_source, measured_peak_tflops, mfu_vs_measured, params,
loss, ...); on NVIDIA GPUs with nvidia-ml-py also avg_power_w and joules_per_token; with the
comparison hf_torch_tokens_per_s, hf_torch_step_ms, speedup_vs_hf_torch, hf_torch_model and
hf_torch_params. FLOPs are counted by `jaxpretrain.train.flops`; `mfu` divides them by the peak
training rows use (`jaxpretrain.train.peak.peak_flops`: `train.peak_tflops`, else the datasheet,
else the measured matmul ceiling), and `mfu_vs_measured` by the measured ceiling
(`measured_peak_tflops`), the denominator of bench's `mfu` before 2026-12-01.
"""

from __future__ import annotations

import statistics
import time

import flax.linen as nn
import jax
import numpy as np

from jaxpretrain.commands.bench.power import EnergyMeter
from jaxpretrain.errors import UserError
from jaxpretrain.models.config import ModelConfig
from jaxpretrain.models.encoder import resolve_attention
from jaxpretrain.tasks import registry
from jaxpretrain.train import flops as flops_lib
from jaxpretrain.train import loop
from jaxpretrain.train import peak as peak_lib

COMPARE = ("", "hf-torch")


def build_task(config, model_config: ModelConfig):
  """The pretraining task of `config.task.name`, without a tokenizer (ids 0-4 are the specials)."""
  name = config.task.name
  bench = registry.TASKS[name].bench if name in registry.TASKS else None
  if bench is None:
    raise UserError(
      f"bench measures pretraining: task.name must be {' or '.join(registry.bench_names())}, not {name!r}"
    )
  return bench.build_task(config, model_config)


def synthetic_batch(task, batch_size: int, seq_len: int, seed: int) -> dict:
  """A host batch with the task's fields: random non-special token ids, full rows, one segment each."""
  rs = np.random.RandomState(seed)
  batch = {}
  for key, spec in jax.eval_shape(lambda: task.dummy_batch(batch_size, seq_len)).items():
    if key == "input_ids":
      batch[key] = rs.randint(5, task.model_config.vocab_size, spec.shape).astype(spec.dtype)
    elif key in ("segment_ids", "attention_mask"):
      batch[key] = np.ones(spec.shape, spec.dtype)
    else:
      batch[key] = np.zeros(spec.shape, spec.dtype)
  return batch


def _peak_memory(compiled) -> tuple[int, str]:
  """(bytes, source): the allocator's peak where the device reports it, else XLA's estimate."""
  stats = [d.memory_stats() for d in jax.local_devices()]
  if all(s and "peak_bytes_in_use" in s for s in stats):
    return max(s["peak_bytes_in_use"] for s in stats), "allocator"
  m = compiled.memory_analysis()
  total = m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes - m.alias_size_in_bytes
  return int(total), "compiler"


class _JaxSteps:
  """The compiled training step of `config` with its state and two device batches, ready to time."""

  def __init__(self, config, task, total_steps: int):
    batch_size, seq_len = config.train.batch_size, config.data.seq_len
    strategy = loop.create_strategy(config, task.model_config)
    self.state = loop.init_state(config, strategy, task, seq_len, total_steps)
    self.batches = [strategy.put_batch(synthetic_batch(task, batch_size, seq_len, seed)) for seed in range(2)]
    self.base_rng = jax.random.PRNGKey(config.train.seed + 1)
    step = strategy.compile_train_step()
    start = time.perf_counter()
    with jax.set_mesh(strategy.mesh), nn.logical_axis_rules(strategy.rules):
      self.compiled = step.jitted.lower(self.state, self.batches[0], self.base_rng).compile()
    self.compile_s = time.perf_counter() - start
    self.done, self.metrics = 0, None

  def time(self, steps: int) -> float:
    """Runs `steps` steps (the state is donated and replaced); returns their wall-clock seconds."""
    start = time.perf_counter()
    for _ in range(steps):
      rng = jax.random.fold_in(self.base_rng, self.done)  # as the loop derives each step's key
      self.state, self.metrics = self.compiled(self.state, self.batches[self.done % 2], rng)
      self.done += 1
    jax.block_until_ready(self.metrics)
    return time.perf_counter() - start


def run(
  config,
  *,
  steps: int = 20,
  warmup: int = 2,
  rounds: int = 3,
  compare: str = "",
  profile_dir: str = "",
  profile_steps: int = 3,
) -> dict:
  """Benchmarks the training step of `config` (see the module docstring).

  Args:
    config: a full config; model.*, task.*, data.seq_len, train.* and mesh.* are used.
    steps: timed steps (split over `rounds`).
    warmup: untimed steps after compilation.
    rounds: timing rounds; the median round's step time is reported.
    compare: "" or "hf-torch".
    profile_dir: where set, after the timed rounds `profile_steps` more steps run under
      `jax.profiler.trace` (TensorBoard/XProf `.xplane.pb` plus a Perfetto JSON trace) into this
      directory; the timed figures do not include them.
    profile_steps: steps to trace.

  Returns:
    The result dict (one JSON line on the command line).
  """
  if compare not in COMPARE:
    raise UserError(f"--compare={compare!r}; choose hf-torch (or leave it out)")
  if steps < 1 or warmup < 0 or rounds < 1 or profile_steps < 1:
    raise UserError("bench needs --steps >= 1, --rounds >= 1, --profile_steps >= 1 and --warmup >= 0")
  if compare == "hf-torch":
    from jaxpretrain.commands.bench.hf_torch import import_torch

    import_torch()  # a missing PyTorch fails now, not after the JAX half of the run
  loop.validate(config)
  model_config = ModelConfig.from_config(config.model)
  task = build_task(config, model_config)
  rounds = min(rounds, steps)
  per_round = -(-steps // rounds)
  jax_steps = _JaxSteps(config, task, warmup + 1 + per_round * rounds)
  jax_steps.time(warmup + 1)
  torch_steps = None
  if compare == "hf-torch":
    from jaxpretrain.commands.bench.hf_torch import TorchStep

    torch_steps = TorchStep(
      model_config,
      task.name,
      config.train.batch_size,
      config.data.seq_len,
      config.train,
      mask_prob=config.task.mask_prob,
      on_gpu=jax.default_backend() == "gpu",
    )
    torch_steps.time(max(warmup, 1))
  meter = EnergyMeter()
  jax_times, torch_times = [], []
  for _ in range(rounds):  # alternating rounds: a busy machine slows both systems alike
    with meter.region():
      jax_times.append(jax_steps.time(per_round) / per_round)
    if torch_steps is not None:
      torch_times.append(torch_steps.time(per_round) / per_round)
  jax_s = statistics.median(jax_times)
  if profile_dir:
    with jax.profiler.trace(profile_dir, create_perfetto_trace=True):
      jax_steps.time(profile_steps)
  result = _result(config, model_config, task, jax_steps, jax_s, per_round * rounds)
  tokens_per_step = config.train.batch_size * config.data.seq_len
  energy = meter.result()
  if energy:
    result["avg_power_w"] = round(energy["avg_power_w"], 1)
    result["joules_per_token"] = energy["joules"] / (tokens_per_step * per_round * rounds)
  if torch_steps is not None:
    torch_s = statistics.median(torch_times)
    result.update(
      hf_torch_step_ms=round(torch_s * 1e3, 3),
      hf_torch_tokens_per_s=round(tokens_per_step / torch_s, 1),
      speedup_vs_hf_torch=round(torch_s / jax_s, 3),
      hf_torch_threads=torch_steps.threads,
      hf_torch_loss=round(torch_steps.loss, 4),
      hf_torch_model=torch_steps.architecture,
      hf_torch_params=torch_steps.params,
    )
  return result


def _result(config, model_config, task, jax_steps: _JaxSteps, step_s: float, steps: int) -> dict:
  """The documented keys (and context) for a measured step time."""
  batch_size, seq_len = config.train.batch_size, config.data.seq_len
  tokens_per_s = batch_size * seq_len / step_s
  rows = flops_lib.head_rows(task, seq_len)
  flops_per_token = flops_lib.training_flops_per_token(model_config, seq_len, task_name=task.name, head_rows=rows)
  achieved = tokens_per_s * flops_per_token
  peak, peak_source = peak_lib.peak_flops(model_config.compute_dtype, config.train.peak_tflops)
  measured = peak_lib.measured_flops(model_config.compute_dtype) * peak_lib.counted_devices()
  memory, memory_source = _peak_memory(jax_steps.compiled)
  shapes = jax.eval_shape(lambda: task.init(jax.random.PRNGKey(0), seq_len))
  return {
    "layers": model_config.num_hidden_layers,
    "hidden": model_config.hidden_size,
    "heads": model_config.num_attention_heads,
    "mlp": model_config.intermediate_size,
    "vocab": model_config.vocab_size,
    "seq": seq_len,
    "batch": batch_size,
    "step_ms": round(step_s * 1e3, 3),
    "tokens_per_s": round(tokens_per_s, 1),
    "tflops": round(achieved / 1e12, 4),
    "mfu": round(achieved / peak, 4),
    "compile_s": round(jax_steps.compile_s, 2),
    "peak_memory_bytes": memory,
    "peak_memory_source": memory_source,
    "task": task.name,
    "head_positions": getattr(task, "head_positions", "all"),
    "head_rows": rows,
    "dtype": model_config.dtype,
    "attention": resolve_attention(model_config.attention, model_config.compute_dtype, model_config.head_dim),
    "remat": model_config.remat,
    "scan_layers": model_config.scan_layers,
    "hidden_dropout": model_config.hidden_dropout_prob,
    "attention_dropout": model_config.attention_probs_dropout_prob,
    "devices": jax.device_count(),
    "device": jax.devices()[0].device_kind,
    "backend": jax.default_backend(),
    "flops_per_token": round(flops_per_token),
    "peak_tflops": round(peak / 1e12, 4),
    "peak_source": peak_source,
    "measured_peak_tflops": round(measured / 1e12, 4),
    "mfu_vs_measured": round(achieved / measured, 4),
    "params": sum(x.size for x in jax.tree.leaves(nn.meta.unbox(shapes))),
    "steps": steps,
    "loss": round(float(jax_steps.metrics["loss"]), 4),
  }
