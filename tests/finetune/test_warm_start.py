"""Partial restore: the encoder comes back bit-identical, the head and optimizer start fresh."""

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from jaxpretrain import checkpoint as checkpoint_lib
from jaxpretrain.models.config import ModelConfig
from jaxpretrain.parallel import strategy as strategy_lib
from jaxpretrain.tasks import registry
from jaxpretrain.train import warm_start
from jaxpretrain.train.state import TrainState
from tests.finetune.helpers import finetune_config


def _fresh_state(config, workdir):
  data = registry.build_data(config, workdir)
  task = registry.build_task(config, ModelConfig.from_config(config.model), data)
  strategy = strategy_lib.create(config.mesh)
  make_state = TrainState.create(config, task, config.train.steps)
  return strategy.init_state(make_state, lambda r: task.init(r, data.seq_len), jax.random.PRNGKey(0)), strategy


def _saved_params(workdir, step):
  path = checkpoint_lib.item_path(workdir, step)
  return ocp.PyTreeCheckpointer().restore(path)["params"]


def test_partial_restore_keeps_encoder_bit_identical_and_initializes_the_head(pretrained, tmp_path):
  config = finetune_config(init_from=pretrained)
  fresh, strategy = _fresh_state(config, str(tmp_path))
  fresh_host = jax.device_get(fresh.params)
  warm = warm_start.apply(config, fresh, strategy)
  saved = _saved_params(pretrained, 4)  # init_step=-1: the latest step
  warm_encoder = checkpoint_lib.flat_leaves(jax.device_get(warm.params["encoder"]))
  saved_encoder = checkpoint_lib.flat_leaves(saved["encoder"])
  assert set(warm_encoder) == set(saved_encoder)  # embeddings, layer_0, pooler: every leaf restored
  for path, leaf in warm_encoder.items():
    np.testing.assert_array_equal(leaf, saved_encoder[path], err_msg=path)
  fresh_encoder = checkpoint_lib.flat_leaves(fresh_host["encoder"])
  assert any(not np.array_equal(fresh_encoder[p], warm_encoder[p]) for p in warm_encoder)
  # The head is the classifier, freshly initialized; the MLM head of the checkpoint is not used.
  assert set(warm.params["head"]) == {"classifier"} and "classifier" not in saved["head"]
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(warm.params["head"]), fresh_host["head"])
  assert int(warm.step) == 0
  assert all(
    float(jnp.abs(x).sum()) == 0.0 for x in jax.tree.leaves(warm.opt_state) if hasattr(x, "shape") and x.ndim > 0
  )  # Adam moments fresh (zero)


def test_init_step_picks_an_earlier_checkpoint(pretrained, tmp_path):
  config = finetune_config(init_from=pretrained, init_step=2)
  fresh, strategy = _fresh_state(config, str(tmp_path))
  warm = warm_start.apply(config, fresh, strategy)
  at_2, at_4 = _saved_params(pretrained, 2)["encoder"], _saved_params(pretrained, 4)["encoder"]
  kernel = lambda p: np.asarray(p["layer_0"]["mlp"]["intermediate"]["kernel"])
  np.testing.assert_array_equal(kernel(jax.device_get(warm.params["encoder"])), kernel(at_2))
  assert not np.array_equal(kernel(at_2), kernel(at_4))
