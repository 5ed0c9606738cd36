"""Partial restore: the encoder comes back bit-identical, the head and optimizer start fresh."""

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from jaxpretrain import checkpoint as checkpoint_lib
from jaxpretrain import cli
from jaxpretrain import config as config_lib
from jaxpretrain.checkpoint import init_from
from jaxpretrain.config import CONFIG_DIR
from jaxpretrain.errors import UserError
from jaxpretrain.models.config import ARCHITECTURE_KEYS, ModelConfig
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


def test_a_checkpoint_of_other_dims_names_the_first_leaf_that_does_not_fit(pretrained, tmp_path):
  """The shape check behind `init_from` (the sizes normally come from the source's config.json)."""
  config = finetune_config(init_from=pretrained)
  config.model.intermediate_size = 128  # as if the source's config.json had been edited
  fresh, strategy = _fresh_state(config, str(tmp_path))
  with pytest.raises(
    UserError, match=r"encoder leaf layer_0/mlp/intermediate/bias has shape \(64,\) in the checkpoint"
  ):
    warm_start.apply(config, fresh, strategy)


def test_a_recipe_of_another_size_takes_the_architecture_of_the_init_from_run(pretrained, tmp_path, capsys):
  """configs/finetune_cls.py is BERT-base with seq_len 256; the source is a 1-layer, 32-wide model
  with 64 positions: the fine-tune takes the source's sizes (one note) and caps seq_len."""
  workdir = tmp_path / "ft"
  argv = [
    "finetune",
    f"--config={CONFIG_DIR}/finetune_cls.py",
    f"--workdir={workdir}",
    f"--config.init_from={pretrained}",
    "--config.data.train=embedded",
    "--config.data.train_examples=16",
    "--config.data.eval_examples=8",
    "--config.train.num_epochs=0",
    "--config.train.steps=2",
    "--config.train.batch_size=8",
    "--config.train.warmup_steps=0",
    "--config.eval.every_steps=0",
    "--config.train.progress=false",
  ]
  assert cli.main(argv) == 0
  err = capsys.readouterr().err
  notes = [line for line in err.splitlines() if "the model follows" in line]
  assert notes == [
    f"jaxpretrain: note: the model follows init_from={pretrained}: vocab_size 30522 -> 512, hidden_size 768 -> 32, "
    "num_hidden_layers 12 -> 1, num_attention_heads 12 -> 2, intermediate_size 3072 -> 64, "
    "max_position_embeddings 512 -> 64, data.seq_len 256 -> 64"
  ]
  saved = config_lib.load_saved(str(workdir))
  source = config_lib.load_saved(pretrained)
  assert {k: saved.model[k] for k in ARCHITECTURE_KEYS} == {k: source.model[k] for k in ARCHITECTURE_KEYS}
  assert saved.data.seq_len == 64
  assert saved.model.hidden_dropout_prob == 0.1  # a training choice: the recipe's, not the source's 0.0


def test_an_explicit_seq_len_longer_than_the_source_s_positions_is_an_error(pretrained):
  config = finetune_config(init_from=pretrained, data__seq_len=128)
  with pytest.raises(
    UserError, match=rf"^data.seq_len=128 exceeds the 64 positions of the model of init_from={pretrained}$"
  ):
    init_from.apply_run_config(config)
