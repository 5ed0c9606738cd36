"""Where the demo's time goes, measured as relative costs that hold on a busy machine.

  python benchmarks/demo_profile.py [--config=demo] [--part=step,argmax,finetune] [--rounds=5] [--steps=10]

`step`: the demo's MLM pretraining step (`train.step.train_step`, built as `jaxpretrain bench`
builds it) against a plain Flax-linen BERT step of the same dimensions written out below (post-LN,
erf GELU, the head on the same number of gathered rows, tied output projection, AdamW, float32),
timed in alternating rounds so that other load slows both alike; the median round of each.

`argmax`: the "correct" count of the MLM loss on logits of the demo's shape, `jnp.argmax == labels`
against `tasks.base.argmax_equals` (XLA's CPU argmax is a scalar reduction).

`eval_batch` (needs `--init_from`): scoring the demo's test set with test batches of 16 to 256 rows.

`finetune`: one demo fine-tuning run from a pretrained encoder as the demo ran it before issue #19
(rows of 64 tokens, test batches of 16 rows) and as it runs now (`demo.seq_len`, large test
batches): the whole run, its test-set evaluation, the first warm start (reads the checkpoint) and a
later one (the sweep's kept copy), and how often each step function compiled. It pretrains
nothing worth fine-tuning: `--init_from=PRETRAIN_WORKDIR` names a pretraining run (else a 2-step
one is made in a temporary directory; the timings do not depend on what the encoder learned).

Each result is one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from jaxpretrain import config as config_lib  # noqa: E402


class _PlainLayer(nn.Module):
  hidden: int
  heads: int
  mlp: int

  @nn.compact
  def __call__(self, x, mask):
    y = nn.MultiHeadDotProductAttention(self.heads, qkv_features=self.hidden)(x, x, mask=mask)
    x = nn.LayerNorm(epsilon=1e-12)(x + y)
    y = nn.Dense(self.hidden)(nn.gelu(nn.Dense(self.mlp)(x), approximate=False))
    return nn.LayerNorm(epsilon=1e-12)(x + y)


class _PlainBert(nn.Module):
  """A textbook Flax BERT with an MLM head on gathered positions (no logical axes, no sharding)."""

  layers: int
  hidden: int
  heads: int
  mlp: int
  vocab: int
  max_len: int

  @nn.compact
  def __call__(self, ids, positions):
    embed = nn.Embed(self.vocab, self.hidden)
    pos = self.param("pos", nn.initializers.normal(0.02), (self.max_len, self.hidden))
    x = nn.LayerNorm(epsilon=1e-12)(embed(ids) + pos[: ids.shape[1]])
    mask = nn.make_attention_mask(ids > 0, ids > 0)
    for _ in range(self.layers):
      x = _PlainLayer(self.hidden, self.heads, self.mlp)(x, mask)
    x = jnp.take_along_axis(x, positions[..., None], axis=1)
    x = nn.LayerNorm(epsilon=1e-12)(nn.gelu(nn.Dense(self.hidden)(x), approximate=False))
    return embed.attend(x) + self.param("bias", nn.initializers.zeros, (self.vocab,))


class _PlainSteps:
  """The plain model's jitted AdamW step on two fixed batches, ready to time."""

  def __init__(self, config, rows: int):
    m = config.model
    batch, seq = config.train.batch_size, config.data.seq_len
    self.model = _PlainBert(
      m.num_hidden_layers, m.hidden_size, m.num_attention_heads, m.intermediate_size, m.vocab_size, seq
    )
    rs = np.random.RandomState(0)
    self.batches = [
      (
        jnp.asarray(rs.randint(5, m.vocab_size, (batch, seq)), jnp.int32),
        jnp.asarray(np.sort(rs.rand(batch, seq).argsort(1)[:, :rows], 1), jnp.int32),
      )
      for _ in range(2)
    ]
    ids, positions = self.batches[0]
    self.params = jax.jit(self.model.init)(jax.random.PRNGKey(0), ids, positions)
    tx = optax.adamw(config.train.learning_rate, weight_decay=config.train.weight_decay)
    self.opt = jax.jit(tx.init)(self.params)

    def step(params, opt, ids, positions):
      def loss_fn(p):
        logits = self.model.apply(p, ids, positions)
        targets = jnp.take_along_axis(ids, positions, axis=1)
        return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()

      loss, grads = jax.value_and_grad(loss_fn)(params)
      updates, opt = tx.update(grads, opt, params)
      return optax.apply_updates(params, updates), opt, loss

    self.step = jax.jit(step, donate_argnums=(0, 1))
    self.done, self.loss = 0, None

  def time(self, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
      self.params, self.opt, self.loss = self.step(self.params, self.opt, *self.batches[self.done % 2])
      self.done += 1
    jax.block_until_ready(self.loss)
    return time.perf_counter() - start


class _OurSteps:
  """The demo's MLM train step as `loop.run` builds it (strategy, state, `compile_train_step`)."""

  def __init__(self, config, total_steps: int):
    from jaxpretrain.models.config import ModelConfig
    from jaxpretrain.tasks.mlm import MaskedLM
    from jaxpretrain.train import loop

    model_config = ModelConfig.from_config(config.model)
    self.task = MaskedLM(model_config, head_positions=config.task.head_positions)
    strategy = loop.create_strategy(config, model_config)
    batch, seq = config.train.batch_size, config.data.seq_len
    self.state = loop.init_state(config, strategy, self.task, seq, total_steps)
    rs = np.random.RandomState(0)
    self.batches = [
      strategy.put_batch(
        {
          "input_ids": rs.randint(5, model_config.vocab_size, (batch, seq)).astype(np.int32),
          "segment_ids": np.ones((batch, seq), np.int32),
        }
      )
      for _ in range(2)
    ]
    self.step, self.rng = strategy.compile_train_step(), jax.random.PRNGKey(1)
    self.done, self.metrics = 0, None

  def time(self, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
      rng = jax.random.fold_in(self.rng, self.done)
      self.state, self.metrics = self.step(self.state, self.batches[self.done % 2], rng)
      self.done += 1
    jax.block_until_ready(self.metrics)
    return time.perf_counter() - start


def profile_step(config, rounds: int, steps: int) -> dict:
  """The demo's pretraining step against the plain Flax step (alternating rounds).

  Returns:
    {"part": "step", "jaxpretrain_ms", "plain_flax_ms", "ratio", "head_rows", ...}.
  """
  ours = _OurSteps(config, 2 + rounds * steps)
  rows = ours.task.max_predictions(config.data.seq_len) if ours.task.head_positions == "masked" else 0
  plain = _PlainSteps(config, rows or config.data.seq_len)
  ours.time(2), plain.time(2)
  ours_s, plain_s = [], []
  for _ in range(rounds):
    ours_s.append(ours.time(steps) / steps)
    plain_s.append(plain.time(steps) / steps)
  a, b = statistics.median(ours_s), statistics.median(plain_s)
  return {
    "part": "step",
    "batch": config.train.batch_size,
    "seq": config.data.seq_len,
    "head_rows": rows or config.data.seq_len,
    "jaxpretrain_ms": round(a * 1e3, 2),
    "plain_flax_ms": round(b * 1e3, 2),
    "ratio": round(a / b, 3),
    "rounds": rounds,
    "steps_per_round": steps,
  }


def profile_finetune(config, init_from: str, rounds: int) -> list[dict]:
  """One demo fine-tuning run from a pretrained encoder, as the demo ran it before issue #19 (rows of 64
  tokens, test batches of 16) and as `config` runs it now.

  Returns:
    One dict per variant: seconds of a whole run (median of `rounds` runs after a first, compiling
    one), of its test-set evaluation, of the first warm start (reads the checkpoint) and of a later
    one (the kept copy), and the compile counts of the sweep's step functions.
  """
  from jaxpretrain import demo
  from jaxpretrain.data.finetune.features import encode_classification
  from jaxpretrain.data.readers import embedded
  from jaxpretrain.data.tokenizer import Tokenizer
  from jaxpretrain.demo.sweep import Sweep
  from jaxpretrain.train import loop

  d = config.demo
  if not init_from:
    init_from = tempfile.mkdtemp(prefix="demo_profile_")
    small = config_lib.load("demo")
    config_lib.apply_overrides(
      small,
      [("train.steps", 2), ("train.progress", False), ("eval.every_steps", 0), ("data.embedded_documents", 2000)],
    )
    loop.run(small, init_from)
  tokenizer = Tokenizer.load(f"{init_from}/tokenizer")
  test, train = embedded.labeled_examples("test", d.test_examples, 0), embedded.labeled_examples("train", 1024, 0)
  now = demo.finetune_config(config, f"{init_from}/tokenizer")
  out = []
  for name, seq_len, eval_batch in [("before", 64, d.batch_size), ("now", d.seq_len, now.eval.batch_size)]:

    def encode(examples, seq_len=seq_len):
      rows = [{"text_a": e["text"], "text_b": None, "label": e["label"], "where": "embedded"} for e in examples]
      return encode_classification(rows, tokenizer, seq_len, embedded.LABEL_NAMES)

    ft = demo.finetune_config(config, f"{init_from}/tokenizer")
    ft.data.seq_len, ft.eval.batch_size = seq_len, eval_batch
    sweep = Sweep(ft, num_labels=2, steps=d.steps, eval_arrays=encode(test))
    arrays = encode(train[: d.budgets[0]])
    warm = []
    for seed in range(2):  # the first reads the checkpoint, the second uses the kept copy
      state = jax.block_until_ready(sweep.init_state(seed))
      start = time.perf_counter()
      jax.block_until_ready(sweep.warm_start(state, init_from))
      warm.append(time.perf_counter() - start)
    run_s, eval_s = [], []
    for r in range(rounds + 1):  # the first run compiles: not counted
      start = time.perf_counter()
      sweep.run(arrays, seed=r, init_from=init_from)
      if r:
        run_s.append(time.perf_counter() - start)
    for _ in range(rounds):
      start = time.perf_counter()
      for batch in sweep.eval_batches:
        jax.block_until_ready(sweep.eval_step(state, batch, jax.random.PRNGKey(0)))
      eval_s.append(time.perf_counter() - start)
    out.append(
      {
        "part": "finetune",
        "variant": name,
        "seq": seq_len,
        "eval_batch": eval_batch,
        "run_s": round(statistics.median(run_s), 3),
        "eval_s": round(statistics.median(eval_s), 3),
        "warm_start_read_s": round(warm[0], 3),
        "warm_start_kept_s": round(warm[1], 3),
        **{f"{k}_compiles": v for k, v in sweep.compilations().items()},
      }
    )
  return out


def profile_eval_batch(config, init_from: str, rounds: int) -> dict:
  """Seconds to score the demo's test set with test batches of 16..256 rows (alternating rounds).

  Returns:
    {"part": "eval_batch", "seconds": {rows per batch: median seconds}}.
  """
  from jaxpretrain import demo
  from jaxpretrain.data.finetune.features import encode_classification
  from jaxpretrain.data.readers import embedded
  from jaxpretrain.data.tokenizer import Tokenizer
  from jaxpretrain.demo.sweep import Sweep

  d = config.demo
  tokenizer = Tokenizer.load(f"{init_from}/tokenizer")
  rows = [
    {"text_a": e["text"], "text_b": None, "label": e["label"], "where": "embedded"}
    for e in embedded.labeled_examples("test", d.test_examples, 0)
  ]
  test = encode_classification(rows, tokenizer, d.seq_len, embedded.LABEL_NAMES)
  sweeps = {}
  for size in (16, 32, 64, 128, 256):
    ft = demo.finetune_config(config, f"{init_from}/tokenizer")
    ft.eval.batch_size = size
    sweep = Sweep(ft, num_labels=2, steps=d.steps, eval_arrays=test)
    sweeps[size] = (sweep, sweep.init_state(0))
  times = {size: [] for size in sweeps}
  for r in range(rounds + 1):  # the first round compiles: not counted
    for size, (sweep, state) in sweeps.items():
      start = time.perf_counter()
      for batch in sweep.eval_batches:
        jax.block_until_ready(sweep.eval_step(state, batch, jax.random.PRNGKey(0)))
      if r:
        times[size].append(time.perf_counter() - start)
  return {"part": "eval_batch", "seconds": {k: round(statistics.median(v), 3) for k, v in times.items()}}


def profile_argmax(config, rounds: int, steps: int) -> dict:
  """The "correct" count of the MLM loss on logits of the demo's shape: `jnp.argmax(...) == labels` against
  `tasks.base.argmax_equals` (what the loss uses), alternating rounds.

  Returns:
    {"part": "argmax", "argmax_ms", "argmax_equals_ms", "ratio", "rows", "vocab"}.
  """
  from jaxpretrain.models.config import ModelConfig
  from jaxpretrain.tasks.base import argmax_equals
  from jaxpretrain.tasks.mlm import MaskedLM

  task = MaskedLM(ModelConfig.from_config(config.model))
  rows = config.train.batch_size * task.max_predictions(config.data.seq_len)
  rs = np.random.RandomState(0)
  logits = jnp.asarray(rs.randn(rows, config.model.vocab_size).astype(np.float32))
  labels = jnp.asarray(rs.randint(0, config.model.vocab_size, rows).astype(np.int32))
  fns = {
    "argmax": jax.jit(lambda x, y: (jnp.argmax(x, -1) == y).sum()),
    "argmax_equals": jax.jit(lambda x, y: argmax_equals(x, y).sum()),
  }
  times = {k: [] for k in fns}
  for f in fns.values():
    f(logits, labels).block_until_ready()
  for _ in range(rounds):
    for k, f in fns.items():
      start = time.perf_counter()
      for _ in range(steps):
        f(logits, labels).block_until_ready()
      times[k].append((time.perf_counter() - start) / steps)
  a, b = statistics.median(times["argmax"]), statistics.median(times["argmax_equals"])
  return {
    "part": "argmax",
    "rows": rows,
    "vocab": config.model.vocab_size,
    "argmax_ms": round(a * 1e3, 2),
    "argmax_equals_ms": round(b * 1e3, 2),
    "ratio": round(a / b, 2),
  }


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--config", default="demo")
  p.add_argument("--part", default="step,argmax,finetune")
  p.add_argument("--rounds", type=int, default=5)
  p.add_argument("--steps", type=int, default=10)
  p.add_argument("--init_from", default="", help="a pretraining workdir (finetune, eval_batch)")
  args = p.parse_args(argv)
  config = config_lib.load(args.config)
  parts = args.part.split(",")
  if "eval_batch" in parts and not args.init_from:
    p.error("--part=eval_batch needs --init_from=PRETRAIN_WORKDIR")
  if "step" in parts:
    print(json.dumps(profile_step(config, args.rounds, args.steps)), flush=True)
  if "argmax" in parts:
    print(json.dumps(profile_argmax(config, args.rounds, args.steps)), flush=True)
  if "eval_batch" in parts:
    print(json.dumps(profile_eval_batch(config, args.init_from, args.rounds)), flush=True)
  if "finetune" in parts:
    for row in profile_finetune(config, args.init_from, args.rounds):
      print(json.dumps(row), flush=True)


if __name__ == "__main__":
  sys.exit(main())
