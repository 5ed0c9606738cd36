"""The decoder configs: GPT-2 small has GPT-2's 124M parameters; the tiny configs fit together."""

import flax.linen as nn
import jax
import numpy as np

from jaxpretrain import config as config_lib
from jaxpretrain.hf import families
from jaxpretrain.models.config import ModelConfig
from jaxpretrain.tasks.causal_lm import CausalLM
from jaxpretrain.train import loop


def _parameters(model_config, seq_len):
  shapes = jax.eval_shape(lambda r: CausalLM(model_config).init(r, seq_len), jax.random.PRNGKey(0))
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(nn.meta.unbox(shapes))))


def test_gpt2_small_has_gpt2s_parameter_count_and_exports_as_gpt2():
  config = config_lib.load("gpt2_small")
  loop.validate(config)
  model = ModelConfig.from_config(config.model)
  assert _parameters(model, 16) == 124_439_808  # GPT2LMHeadModel.from_pretrained("gpt2")
  assert (model.num_hidden_layers, model.hidden_size, model.max_position_embeddings) == (12, 768, 1024)
  assert config.task.name == "causal_lm" and config.data.seq_len == 1024 and config.data.train.startswith("tfds:")
  assert families.architecture_for(families.family_of(model), config.task.name) == "GPT2LMHeadModel"


def test_translate_tiny_fine_tunes_the_gpt_tiny_decoder():
  pretrain, finetune = config_lib.load("gpt_tiny"), config_lib.load("translate_tiny")
  for config in (pretrain, finetune):
    loop.validate(config)
  assert dict(pretrain.model) == dict(finetune.model)  # init_from restores every leaf
  assert (pretrain.task.name, finetune.task.name) == ("causal_lm", "translation")
  assert families.family_of(ModelConfig.from_config(pretrain.model)) == "gpt2"
