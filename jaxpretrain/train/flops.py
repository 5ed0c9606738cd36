"""Training FLOPs per token and the device's measured matmul ceiling, for TFLOP/s and MFU.

The count follows Kaplan et al. / PaLM (appendix B): a matmul weight used by one position costs
2 FLOPs per parameter forward and 4 backward, so training costs

  6 × (matmul parameters of the layers + head matmul parameters × share of positions through the head)
  + 12 · hidden · Σ_layers keys(layer)         (attention scores and values, forward + backward)

per token. A layer's matmul parameters are Q and O (hidden²), K and V (hidden × the key/value heads'
width: less under grouped-query attention) and the MLP (two hidden × intermediate matrices, three
when gated). `keys(layer)` is the keys a query attends to: seq_len for a global layer, halved for
causal models (half the score matrix is masked away, as flash kernels skip it); a sliding-window
layer attends to at most 2·window + 1 keys (window + 1 causal). Embedding lookups, LayerNorms, softmaxes, biases and the
optimizer are left out. The MLM head that runs on the gathered positions only counts those
positions (`head_rows` per sequence); one that scores every position counts them all.

MFU (training rows and `bench` alike) is achieved FLOP/s divided by `peak.peak_flops`:
`train.peak_tflops`, else the datasheet peak of a known accelerator, else `matmul_peak_flops`, a
square matmul timed on the device in the model's compute dtype. `bench` also reports MFU against
that measured ceiling (`mfu_vs_measured`): a datasheet peak is above what any real matmul reaches
(~1.3x the measured ceiling on an H200), so `mfu_vs_measured` reads higher than `mfu`.
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
  d = cfg.hidden_size
  attention = 2 * d * d + 2 * d * cfg.kv_heads * cfg.head_dim
  mlp = (3 if cfg.gated_mlp else 2) * d * cfg.intermediate_size
  return cfg.num_hidden_layers * (attention + mlp)


def attended_keys(cfg: ModelConfig, seq_len: int) -> float:
  """Keys per query summed over the layers (see the module docstring)."""
  full = seq_len / 2 if cfg.causal else seq_len
  span = cfg.sliding_window + 1 if cfg.causal else 2 * cfg.sliding_window + 1
  return sum(full if cfg.is_global(i) else min(full, span) for i in range(cfg.num_hidden_layers))


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
  attention = 12 * cfg.hidden_size * attended_keys(cfg, seq_len)
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


def head_rows(task, seq_len: int) -> int:
  """Positions per sequence the pretraining head runs on (MLM's gathered head runs on fewer)."""
  if getattr(task, "head_positions", "all") == "masked":
    return task.max_predictions(seq_len)
  return seq_len


def task_flops_per_token(task, seq_len: int) -> float:
  """`training_flops_per_token` of any task, for the MFU of training rows.

  A task whose head `bench` counts (MLM, causal LM, and translation, which trains the causal LM's
  head) counts it as `bench` does; the fine-tuning heads (classification, regression, token
  classification, QA: a few hidden × labels weights) are left out, so their count is the encoder's.

  Args:
    task: the run's Task (its `model_config`, `name` and head).
    seq_len: tokens per sequence of the batch.

  Returns:
    FLOPs per token of one training step (forward + backward).
  """
  spec = registry.spec(task.name)
  counted = spec.name if spec.bench is not None else spec.export_task
  if registry.spec(counted).bench is not None:
    return training_flops_per_token(task.model_config, seq_len, task_name=counted, head_rows=head_rows(task, seq_len))
  # No pretraining head: any counted task with zero head rows is the encoder's count.
  return training_flops_per_token(task.model_config, seq_len, task_name=registry.bench_names()[0], head_rows=0)
