"""Small decoder configs and batches shared by the decoder tests."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxpretrain import config as config_lib
from jaxpretrain.models.config import ModelConfig

# GPT arrangement: causal, pre-LN, no pooler or token types (as configs/gpt_tiny.py).
GPT = dict(
  pre_layer_norm=True,
  causal=True,
  use_pooler=False,
  type_vocab_size=0,
  hidden_act="gelu_new",
  layer_norm_eps=1e-5,
  hidden_dropout_prob=0.0,
  attention_probs_dropout_prob=0.0,
)
TINY_GPT = ModelConfig(
  vocab_size=97,
  hidden_size=32,
  num_hidden_layers=2,
  num_attention_heads=4,
  intermediate_size=64,
  max_position_embeddings=48,
  **GPT,
)


def random_params(model, seed: int = 0):
  """Random parameters of `model`'s tree: LayerNorm scales 1 + N(0, 0.1), everything else N(0, 0.1)
  (no zero biases or unit scales that would hide a bug). Drawn on the host from the shapes alone:
  XLA's CPU compile of one random op per leaf takes many seconds."""
  import flax.linen as nn

  shapes = jax.eval_shape(
    lambda: nn.meta.unbox(model.init(jax.random.PRNGKey(0), {"input_ids": jnp.zeros((1, 8), jnp.int32)})["params"])
  )
  rs = np.random.RandomState(seed)

  def draw(path, leaf):
    base = 1.0 if getattr(path[-1], "key", None) == "scale" else 0.0
    return jnp.asarray(base + 0.1 * rs.standard_normal(leaf.shape), leaf.dtype)

  return jax.tree_util.tree_map_with_path(draw, shapes)


def tiny_gpt_config(prepared_dir: str, **overrides):
  """configs/gpt_tiny.py shrunk to a 1-layer, 32-wide decoder on a prepared (gpt-packed) corpus."""
  c = config_lib.load("configs/gpt_tiny.py")
  c.model.num_hidden_layers, c.model.hidden_size, c.model.num_attention_heads = 1, 32, 2
  c.model.intermediate_size, c.model.vocab_size, c.model.max_position_embeddings = 64, 512, 64
  c.data.seq_len, c.data.prepared_dir, c.data.prefetch = 32, prepared_dir, 1
  c.train.batch_size, c.train.steps, c.train.log_every, c.train.progress = 8, 8, 1, False
  c.train.warmup_steps, c.train.learning_rate = 2, 3e-3
  c.eval.every_steps, c.eval.batches, c.checkpoint.every_steps = 0, 2, 4
  config_lib.apply_overrides(c, [(k, v) for k, v in overrides.items()])
  return c


def packed_batches(steps: int, rows: int, length: int, vocab: int, seed: int = 0) -> list[dict]:
  """GPT-packed rows: [BOS] doc [EOS] [BOS] doc [EOS] ... then padding (BOS 2, EOS 3, pad 0)."""
  rs = np.random.RandomState(seed)
  out = []
  for _ in range(steps):
    ids = rs.randint(5, vocab, (rows, length)).astype(np.int32)
    first = rs.randint(length // 4, length // 2, rows)
    end = rs.randint(3 * length // 4, length + 1, rows)
    pos = np.arange(length)[None]
    segments = np.where(pos < first[:, None], 1, np.where(pos < end[:, None], 2, 0)).astype(np.int32)
    ids[:, 0] = 2
    ids[np.arange(rows), first - 1] = 3
    ids[np.arange(rows), first] = 2
    ids[np.arange(rows), end - 1] = 3
    ids[segments == 0] = 0
    out.append({"input_ids": ids, "segment_ids": segments})
  return out
