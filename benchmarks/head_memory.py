"""What the vocabulary head costs in memory: XLA's buffer plan for the training step, compiled only.

    python benchmarks/head_memory.py [--config=benchmarks/configs/bert_base_128.py] [KEY=VALUE ...]

Compiles `train.step.train_step` for abstract (never allocated) state and batch, once per MLM
head variant (`task.head_positions` masked / all), and prints XLA's memory analysis: temp bytes
(activations, logits, gradients in flight) besides arguments and outputs, plus the size of the
float32 logits alone. Runs on any backend (a CPU compiles BERT-base in well under a minute);
the CPU's buffer plan differs from a GPU's in detail, not in what the logits weigh.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import flax.linen as nn
import jax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jaxpretrain import config as config_lib  # noqa: E402
from jaxpretrain.commands import bench  # noqa: E402
from jaxpretrain.models.config import ModelConfig  # noqa: E402
from jaxpretrain.train import flops  # noqa: E402
from jaxpretrain.train import step as step_lib  # noqa: E402
from jaxpretrain.train.state import TrainState  # noqa: E402


def step_memory(config) -> dict:
  """XLA's memory analysis of the compiled train step of `config` (one device, nothing allocated)."""
  model_config = ModelConfig.from_config(config.model)
  task = bench.build_task(config, model_config)
  batch_size, seq_len = config.train.batch_size, config.data.seq_len
  make_state = TrainState.create(config, task, 100)
  rng = jax.random.PRNGKey(0)
  state = jax.eval_shape(lambda r: make_state(nn.meta.unbox(task.init(r, seq_len)), r), rng)
  batch = jax.eval_shape(lambda: task.dummy_batch(batch_size, seq_len))
  compiled = jax.jit(step_lib.train_step, donate_argnums=(0,)).lower(state, batch, rng).compile()
  m = compiled.memory_analysis()
  rows = flops.head_rows(task, seq_len)
  return {
    "head_positions": getattr(task, "head_positions", "all"),
    "head_rows": rows,
    "temp_bytes": m.temp_size_in_bytes,
    "argument_bytes": m.argument_size_in_bytes,
    "output_bytes": m.output_size_in_bytes,
    "alias_bytes": m.alias_size_in_bytes,
    "logits_f32_bytes": batch_size * rows * model_config.vocab_size * 4,
  }


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="benchmarks/configs/bert_base_128.py")
  args, overrides = parser.parse_known_args()
  config = config_lib.load(args.config)
  config_lib.apply_overrides(config, overrides)
  base = {
    "config": args.config,
    "overrides": overrides,
    "backend": jax.default_backend(),
    "batch": config.train.batch_size,
    "seq": config.data.seq_len,
    "vocab": config.model.vocab_size,
    "dtype": config.model.dtype,
  }
  for head_positions in ("masked", "all"):
    config.task.head_positions = head_positions
    print(json.dumps({**base, **step_memory(config)}), flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
