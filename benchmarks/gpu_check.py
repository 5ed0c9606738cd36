"""Correctness on the GPU before speed: one jaxpretrain step and the attention kernels, GPU vs CPU.

    python benchmarks/gpu_check.py [--out=FILE.jsonl]

1. Attention: `jaxpretrain.models.encoder.dot_product_attention` with implementation cudnn
   against xla on the same GPU, bf16, outputs and input gradients, for no mask, right padding
   (attention_mask), packed documents (segment_ids) and causal + packed.
2. One training step (MLM with the masked-only head, and causal LM), bf16 compute, packed rows
   with padding, dropout 0: loss and gradients on the GPU (attention auto = cuDNN, and xla)
   against the CPU (xla) from the same parameters and batch.

Each comparison is one JSON line with its relative error (|a - b| / |b| over the whole tensor
or parameter tree) and `ok` against a bf16 tolerance; the exit status is 1 if any is not ok.
On a machine without a GPU it says so and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxpretrain import config as config_lib
from jaxpretrain.commands.bench import build_task
from jaxpretrain.models import encoder
from jaxpretrain.models.config import ModelConfig
from jaxpretrain.train.state import TrainState
from jaxpretrain.train.step import loss_and_grads, train_step

# bf16 has an 8-bit mantissa (relative rounding 2^-9 ≈ 0.002 per operation); sums over a few
# hundred terms and two different kernels' summation orders stay within a few percent.
ATTENTION_TOL = 0.02
STEP_LOSS_TOL = 0.01
STEP_GRAD_TOL = 0.05


def rel_err(a, b) -> float:
  """‖a - b‖ / ‖b‖ over all leaves of two matching pytrees (float64 on the host)."""
  a = [np.asarray(x, np.float64) for x in jax.tree.leaves(a)]
  b = [np.asarray(x, np.float64) for x in jax.tree.leaves(b)]
  diff = sum(float(np.sum((x - y) ** 2)) for x, y in zip(a, b))
  norm = sum(float(np.sum(y**2)) for y in b)
  return (diff / max(norm, 1e-30)) ** 0.5


def packed_segments(rng: np.random.RandomState, batch: int, length: int, docs: int = 3) -> np.ndarray:
  """segment_ids [batch, length]: `docs` documents of random lengths per row, then padding (0)."""
  out = np.zeros((batch, length), np.int32)
  for row in range(batch):
    cuts = np.sort(rng.choice(np.arange(8, length - 8), docs, replace=False))
    start = 0
    for doc, end in enumerate(cuts, 1):
      out[row, start:end] = doc
      start = end
  return out


def attention_checks(gpu, fused: str = "cudnn") -> list[dict]:
  """cuDNN (`fused`) vs XLA attention on the GPU for each mask kind (forward and input gradients)."""
  rng = np.random.RandomState(0)
  b, t, n, d = 4, 256, 8, 64
  q, k, v, cot = (jax.device_put(jnp.asarray(rng.normal(size=(b, t, n, d)), jnp.bfloat16), gpu) for _ in range(4))
  lengths = np.array([256, 200, 131, 17])
  padding = (np.arange(t)[None] < lengths[:, None]).astype(np.int32)
  segments = packed_segments(rng, b, t)
  cases = {
    "none": (None, False, np.ones((b, t), bool)),
    "padding": (*encoder.attention_mask_from(attention_mask=jnp.asarray(padding))[:1], False, padding > 0),
    "packed": (*encoder.attention_mask_from(segment_ids=jnp.asarray(segments))[:1], False, segments > 0),
    "causal+packed": (*encoder.attention_mask_from(segment_ids=jnp.asarray(segments))[:1], True, segments > 0),
  }
  rows = []
  for name, (mask, causal, real) in cases.items():

    def run(impl, mask=mask, causal=causal, real=real):
      def f(q, k, v):
        out = encoder.dot_product_attention(
          q, k, v, mask, causal=causal, implementation=impl, dropout_rate=0.0, dropout_rng=None, deterministic=True
        )
        return jnp.sum(out.astype(jnp.float32) * cot.astype(jnp.float32)), out

      (_, out), grads = jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2), has_aux=True))(q, k, v)
      keep = jnp.asarray(real)[:, :, None, None]  # padded query rows are not used by the model
      return jnp.where(keep, out, 0), [jnp.where(keep, g, 0) for g in grads]

    out_c, grads_c = run(fused)
    out_x, grads_x = run("xla")
    errors = {"out": rel_err(out_c, out_x), **{f"d{x}": rel_err(g, h) for x, g, h in zip("qkv", grads_c, grads_x)}}
    rows.append(
      {
        "check": f"attention cudnn vs xla: {name}",
        **{key: round(e, 5) for key, e in errors.items()},
        "max_abs_out": float(jnp.max(jnp.abs(out_c.astype(jnp.float32) - out_x.astype(jnp.float32)))),
        "tol": ATTENTION_TOL,
        "ok": max(errors.values()) < ATTENTION_TOL,
      }
    )
  return rows


def _config(task_name: str, attention: str):
  c = config_lib.defaults()
  c.model.update(
    num_hidden_layers=4,
    hidden_size=256,
    num_attention_heads=4,
    intermediate_size=1024,
    vocab_size=8192,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
    dtype="bfloat16",
    attention=attention,
  )
  if task_name == "causal_lm":
    c.model.update(causal=True, pre_layer_norm=True, use_pooler=False, hidden_act="gelu_new")
  c.task.name = task_name
  c.data.seq_len = 128
  return c


def step_checks(gpu, cpu) -> list[dict]:
  """One training step on the GPU (cuDNN and XLA attention) against the CPU, same params and batch."""
  rows = []
  for task_name in ("mlm", "causal_lm"):
    rng = np.random.RandomState(1)
    batch_size, seq_len = 16, 128
    segments = packed_segments(rng, batch_size, seq_len)
    batch = {
      "input_ids": np.where(segments > 0, rng.randint(5, 8192, segments.shape), 0).astype(np.int32),
      "segment_ids": segments,
    }
    results = {}
    params = None
    for label, device, attention in (("cpu", cpu, "xla"), ("gpu-auto", gpu, "auto"), ("gpu-xla", gpu, "xla")):
      config = _config(task_name, attention)
      model_config = ModelConfig.from_config(config.model)
      task = build_task(config, model_config)
      if params is None:  # the CPU's initial parameters, copied to every run
        init = jax.jit(task.init, static_argnums=1)
        params = jax.device_get(nn.unbox(init(jax.device_put(jax.random.PRNGKey(0), cpu), seq_len)))
      on_device = lambda x, device=device: jax.device_put(x, device)
      state = on_device(TrainState.create(config, task, 10)(params, jax.random.PRNGKey(1)))
      step_rng, device_batch = on_device(jax.random.PRNGKey(2)), on_device(batch)
      grads, aux = jax.jit(loss_and_grads)(state, device_batch, step_rng)
      _, metrics = jax.jit(train_step)(state, device_batch, step_rng)
      resolved = encoder.resolve_attention(attention, model_config.compute_dtype, model_config.head_dim)
      results[label] = {
        "grads": jax.device_get(grads),
        "loss": float(metrics["loss"]),
        "grad_norm": float(metrics["grad_norm"]),
        "attention": resolved,
      }
    for label in ("gpu-auto", "gpu-xla"):
      got, want = results[label], results["cpu"]
      loss_err = abs(got["loss"] - want["loss"]) / abs(want["loss"])
      grad_err = rel_err(got["grads"], want["grads"])
      rows.append(
        {
          "check": f"{task_name} step {label} ({got['attention']} attention) vs cpu",
          "loss": round(got["loss"], 5),
          "cpu_loss": round(want["loss"], 5),
          "loss_rel_err": round(loss_err, 6),
          "grad_norm": round(got["grad_norm"], 5),
          "cpu_grad_norm": round(want["grad_norm"], 5),
          "grads_rel_err": round(grad_err, 5),
          "tol": [STEP_LOSS_TOL, STEP_GRAD_TOL],
          "ok": loss_err < STEP_LOSS_TOL and grad_err < STEP_GRAD_TOL,
        }
      )
  return rows


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="", help="also append the JSON lines to this file")
  parser.add_argument(
    "--smoke", action="store_true", help="check this script on a CPU: the CPU stands in for the GPU and XLA for cuDNN"
  )
  args = parser.parse_args()
  cpu = jax.devices("cpu")[0]
  if args.smoke:
    gpu, fused = cpu, "xla"
  else:
    try:
      gpu, fused = jax.devices("gpu")[0], "cudnn"
    except RuntimeError:
      print("gpu_check: JAX sees no GPU here (--smoke checks the script on a CPU)", file=sys.stderr)
      return 2
  rows = attention_checks(gpu, fused) + step_checks(gpu, cpu)
  with open(args.out, "a") if args.out else open("/dev/null", "w") as f:
    for row in rows:
      print(json.dumps(row), flush=True)
      f.write(json.dumps(row) + "\n")
  return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
  sys.exit(main())
