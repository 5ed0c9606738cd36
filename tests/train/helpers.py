"""Small builders shared by the train-step tests."""

import jax
import numpy as np

from jaxpretrain import config as config_lib
from jaxpretrain.models.config import ModelConfig
from jaxpretrain.parallel import strategy as strategy_lib
from jaxpretrain.train.state import TrainState

TINY = ModelConfig(
  vocab_size=256,
  hidden_size=32,
  num_hidden_layers=2,
  num_attention_heads=2,
  intermediate_size=64,
  max_position_embeddings=32,
  hidden_dropout_prob=0.0,
  attention_probs_dropout_prob=0.0,
)


def make_state(task, *, steps=50, lr=3e-3, accum=1, mesh=None, seq_len=32, seed=0):
  """A sharded TrainState for `task` under the jit strategy (all devices on the data axis)."""
  config = config_lib.defaults()
  config.train.learning_rate, config.train.warmup_steps, config.train.grad_accum_steps = lr, 0, accum
  strategy = strategy_lib.create(mesh or config.mesh)
  state = strategy.init_state(
    TrainState.create(config, task, steps), lambda r: task.init(r, seq_len), jax.random.PRNGKey(seed)
  )
  return strategy, state


def mlm_batch(rows=16, length=32, seed=0):
  rs = np.random.RandomState(seed)
  ids = rs.randint(5, 64, (rows, length)).astype(np.int32)  # a small active vocabulary: learnable
  ids[:, 0] = 2
  return {"input_ids": ids, "segment_ids": np.ones((rows, length), np.int32)}
