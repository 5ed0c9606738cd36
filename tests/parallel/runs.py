"""Runs the same steps under each strategy: the fixtures of the equivalence and sharding tests.

Every strategy starts from the same seed and sees the same global batches; a run records the
per-step losses, the XLA compilations after the first step, and keeps its strategy and state.
Batches are synthetic (no data pipeline), so these tests isolate the parallelism.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np

from jaxpretrain import config as config_lib
from jaxpretrain.models.config import ModelConfig
from jaxpretrain.parallel import strategy as strategy_lib
from jaxpretrain.train.state import TrainState

# name -> (mesh overrides, devices used)
STRATEGIES = {
  "1 device": (dict(data=1), 1),
  "jit data=8": (dict(data=8), 8),
  "jit fsdp=8": (dict(data=1, fsdp=8), 8),
  "jit data=2 fsdp=2 tensor=2": (dict(data=2, fsdp=2, tensor=2), 8),
  "pmap over 8": (dict(strategy="pmap"), 8),
}
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@dataclasses.dataclass
class Run:
  strategy: Any
  state: TrainState
  losses: list[float]
  recompiles: int  # XLA compilations after the first step (batches, rng, step)
  train_step: Any


def tiny_config():
  """configs/tiny.py in float32; no warmup, so the first update already moves the weights."""
  config = config_lib.load("configs/tiny.py")
  config.model.dtype = "float32"
  config.train.warmup_steps = 0
  config.train.steps = 5
  return config


def run(task, mesh_overrides: dict, num_devices: int, batches: list[dict], seq_len: int, config) -> Run:
  """Initializes `task`'s state under a strategy and takes one step per batch.

  Args:
    task: the Task (pretraining or fine-tuning).
    mesh_overrides: `mesh.*` keys for this strategy.
    num_devices: how many of the devices to use.
    batches: global host batches (numpy), one per step.
    seq_len: tokens per example (for initialization).
    config: the run config (optimizer settings).

  Returns:
    The `Run`.
  """
  mesh_config = config_lib.defaults().mesh
  for key, value in mesh_overrides.items():
    mesh_config[key] = value
  strategy = strategy_lib.create(mesh_config, jax.devices()[:num_devices])
  for batch in batches:
    strategy.check_batch_size(len(batch["input_ids"]))
  state = strategy.init_state(
    TrainState.create(config, task, len(batches)),
    lambda r: task.init(r, seq_len),
    jax.random.PRNGKey(config.train.seed),
  )
  train_step = strategy.compile_train_step()
  base_rng = jax.random.PRNGKey(config.train.seed + 7)
  compiles = []

  def on_event(event, _duration, **_):
    if event == COMPILE_EVENT:
      compiles.append(event)

  losses = []
  for i, batch in enumerate(batches):
    if i == 1:  # from the second step on, nothing may compile again
      jax.monitoring.register_event_duration_secs_listener(on_event)
    state, metrics = train_step(state, strategy.put_batch(batch), jax.random.fold_in(base_rng, i))
    losses.append(float(metrics["loss"]))
  jax.monitoring.unregister_event_duration_listener(on_event)
  return Run(strategy, state, losses, len(compiles), train_step)


def mlm_batches(steps: int, rows: int, length: int, vocab: int, seed: int = 0) -> list[dict]:
  """Packed MLM rows: [CLS] doc [SEP] [CLS] doc [SEP] [PAD]..., two documents per row."""
  rs = np.random.RandomState(seed)
  out = []
  for _ in range(steps):
    ids = rs.randint(5, vocab, (rows, length)).astype(np.int32)
    split = rs.randint(length // 4, length // 2, rows)
    end = rs.randint(3 * length // 4, length + 1, rows)
    pos = np.arange(length)[None]
    segments = np.where(pos < split[:, None], 1, np.where(pos < end[:, None], 2, 0)).astype(np.int32)
    ids[:, 0] = 2
    ids[np.arange(rows), split] = 2
    ids[segments == 0] = 0
    out.append({"input_ids": ids, "segment_ids": segments})
  return out


def classification_batches(
  steps: int, rows: int, length: int, vocab: int, num_labels: int, seed: int = 0
) -> list[dict]:
  """Padded single-text classification rows; the last row of each batch has weight 0 (padding)."""
  rs = np.random.RandomState(seed)
  out = []
  for _ in range(steps):
    lengths = rs.randint(4, length + 1, rows)
    mask = (np.arange(length)[None] < lengths[:, None]).astype(np.int32)
    ids = np.where(mask == 1, rs.randint(5, vocab, (rows, length)), 0).astype(np.int32)
    ids[:, 0] = 2
    weight = np.ones(rows, np.float32)
    weight[-1] = 0.0
    out.append(
      {
        "input_ids": ids,
        "attention_mask": mask,
        "token_type_ids": np.zeros_like(ids),
        "label": rs.randint(0, num_labels, rows).astype(np.int32),
        "weight": weight,
      }
    )
  return out


def small_model(config) -> ModelConfig:
  """A 1-layer, 32-wide encoder (as tests/run_configs.py) for the fine-tuning comparison."""
  section = dict(config.model)
  section.update(
    num_hidden_layers=1,
    hidden_size=32,
    num_attention_heads=2,
    intermediate_size=64,
    vocab_size=512,
    max_position_embeddings=64,
  )
  return ModelConfig.from_config(section)
