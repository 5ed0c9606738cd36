"""Training FLOPs per token and the device's measured matmul ceiling, for throughput and MFU.

The count follows Kaplan et al. / PaLM (appendix B): a matmul weight used by one position costs
2 FLOPs per parameter forward and 4 backward, so training costs

  6 × (matmul parameters of the layers + head matmul parameters × share of positions through the head)
  + 12 · layers · hidden · seq_len             (attention scores and values, forward + backward)

per token, with the attention term halved for causal models (half the score matrix is masked
away, as flash kernels skip it). Embedding lookups, LayerNorms, softmaxes, biases and the
optimizer are left out. The MLM head that runs on the gathered positions only counts those
positions (`head_rows` per sequence); one that scores every position counts them all. MFU is
achieved FLOP/s divided by `matmul_peak_flops`, a square matmul timed on the current device in
the model's compute dtype (not the vendor's datasheet number, which no real kernel reaches).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

from jaxpretrain.errors import UserError
from jaxpretrain.models.config import ModelConfig
from jaxpretrain.tasks import registry


def layer_matmul_params(cfg: ModelConfig) -> int:
  """Weights one position multiplies through in the Transformer blocks: Q, K, V, O and the MLP."""
  return cfg.num_hidden_layers * (4 * cfg.hidden_size * cfg.hidden_size + 2 * cfg.hidden_size * cfg.intermediate_size)


def head_matmul_params(cfg: ModelConfig, task_name: str) -> int:
  """Weights of the pretraining head: MLM transform + tied vocabulary projection; LM projection."""
  bench = registry.spec(task_name).bench
  if bench is None:
    raise UserError(
      f"FLOPs are counted for the pretraining heads ({', '.join(registry.bench_names())}), not task.name={task_name}"
    )
  projection = cfg.vocab_size * cfg.hidden_size
  return projection + (cfg.hidden_size * cfg.hidden_size if bench.head_transform else 0)


def training_flops_per_token(cfg: ModelConfig, seq_len: int, *, task_name: str, head_rows: int) -> float:
  """Training FLOPs per input token (see the module docstring).

  Args:
    cfg: the model.
    seq_len: tokens per sequence.
    task_name: a pretraining task (`registry.bench_names()`: which head).
    head_rows: positions per sequence the head runs on (seq_len for a head over every position).

  Returns:
    FLOPs per token of one training step (forward + backward).
  """
  matmul = layer_matmul_params(cfg) + head_matmul_params(cfg, task_name) * head_rows / seq_len
  attention = 12 * cfg.num_hidden_layers * cfg.hidden_size * seq_len
  if cfg.causal:
    attention /= 2
  return 6 * matmul + attention


def matmul_peak_flops(dtype, size: int | None = None, repeats: int = 10) -> float:
  """FLOP/s of a square `size`×`size` matmul in `dtype` on the default device (best of 3 timings).

  Args:
    dtype: the compute dtype (bfloat16 on accelerators for the usual peak).
    size: matrix side; default 8192 on accelerators (saturates an H100/H200), 1024 on CPU.
    repeats: matmuls per timing.

  Returns:
    Measured FLOP/s.
  """
  if size is None:
    size = 1024 if jax.default_backend() == "cpu" else 8192
  a = jax.random.normal(jax.random.PRNGKey(0), (size, size), dtype)
  b = jax.random.normal(jax.random.PRNGKey(1), (size, size), dtype)
  matmul = jax.jit(lambda x, y: jnp.matmul(x, y, preferred_element_type=jnp.float32).astype(dtype))
  matmul(a, b).block_until_ready()
  best = float("inf")
  for _ in range(3):
    start = time.perf_counter()
    for _ in range(repeats):
      out = matmul(a, b)
    out.block_until_ready()
    best = min(best, (time.perf_counter() - start) / repeats)
  return 2 * size**3 / best
