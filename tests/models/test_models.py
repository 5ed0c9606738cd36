"""Model invariants: published sizes, masks respected, causal attention, pooling."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpretrain.models import heads, presets
from jaxpretrain.models.config import ModelConfig
from jaxpretrain.models.encoder import Encoder
from jaxpretrain.models.model import Model
from jaxpretrain.models.pooling import mean_pool


def _count(module, seq_len=8):
  shapes = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), {"input_ids": jnp.zeros((1, seq_len), jnp.int32)}))
  return sum(x.size for x in jax.tree.leaves(nn.meta.unbox(shapes["params"])))


def test_bert_base_parameter_count_matches_published():
  # HF BertModel (embeddings + 12 layers + pooler) for bert-base-uncased: 109,482,240 parameters.
  cfg = ModelConfig(**presets.PRESETS["base"])
  model = Model(cfg, heads.MLMHead(cfg))
  shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), {"input_ids": jnp.zeros((1, 8), jnp.int32)}))
  params = nn.meta.unbox(shapes["params"])
  encoder = sum(x.size for x in jax.tree.leaves(params["encoder"]))
  assert encoder == 109_482_240
  # + the MLM head's transform (768*768 + 768), LayerNorm (2*768) and vocabulary bias (30522);
  # the vocabulary projection is tied to the token embedding, as in BertForMaskedLM.
  assert _count(model) == 109_482_240 + 768 * 768 + 768 + 2 * 768 + 30522


@pytest.mark.parametrize(
  "name,expected_encoder",
  [("tiny", 4_385_920), ("mini", 11_170_560), ("small", 28_763_648), ("medium", 41_373_184), ("large", 335_141_888)],
)
def test_preset_encoder_sizes(name, expected_encoder):
  cfg = ModelConfig(**presets.PRESETS[name])
  shapes = jax.eval_shape(lambda: Encoder(cfg).init(jax.random.PRNGKey(0), jnp.zeros((1, 8), jnp.int32)))
  assert sum(x.size for x in jax.tree.leaves(nn.meta.unbox(shapes["params"]))) == expected_encoder


def _tiny(**kw):
  base = dict(
    vocab_size=64,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=16,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
  )
  base.update(kw)
  return ModelConfig(**base)


@pytest.mark.parametrize("use_segments", [False, True])
def test_padding_does_not_change_real_tokens(use_segments):
  cfg = _tiny()
  enc = Encoder(cfg)
  ids = jnp.array([[5, 6, 7, 8, 0, 0]], jnp.int32)
  other = ids.at[0, 4:].set(jnp.array([9, 10]))  # different content in the padded slots
  mask = jnp.array([[1, 1, 1, 1, 0, 0]])
  params = enc.init(jax.random.PRNGKey(0), ids)
  kw = lambda: {"segment_ids": mask} if use_segments else {"attention_mask": mask}
  a = enc.apply(params, ids, **kw()).hidden
  b = enc.apply(params, other, **kw()).hidden
  np.testing.assert_allclose(a[0, :4], b[0, :4], atol=1e-6)


def test_segments_do_not_attend_across_documents():
  cfg = _tiny()
  enc = Encoder(cfg)
  seg = jnp.array([[1, 1, 1, 2, 2, 2]])
  ids = jnp.array([[5, 6, 7, 8, 9, 10]], jnp.int32)
  params = enc.init(jax.random.PRNGKey(0), ids)
  a = enc.apply(params, ids, segment_ids=seg).hidden
  b = enc.apply(params, ids.at[0, 4].set(20), segment_ids=seg).hidden
  np.testing.assert_allclose(a[0, :3], b[0, :3], atol=1e-6)  # first document unaffected
  assert not np.allclose(a[0, 3:], b[0, 3:])


def test_causal_encoder_ignores_future_tokens():
  cfg = _tiny(causal=True, pre_layer_norm=True, use_pooler=False)
  enc = Encoder(cfg)
  ids = jnp.array([[5, 6, 7, 8, 9, 10]], jnp.int32)
  params = enc.init(jax.random.PRNGKey(0), ids)
  a = enc.apply(params, ids).hidden
  b = enc.apply(params, ids.at[0, 5].set(30)).hidden
  np.testing.assert_allclose(a[0, :5], b[0, :5], atol=1e-6)


def test_mean_pool_ignores_padding():
  hidden = jnp.array([[[1.0], [3.0], [100.0]]])
  assert float(mean_pool(hidden, jnp.array([[1, 1, 0]]))[0, 0]) == 2.0


def test_bfloat16_compute_keeps_float32_params():
  cfg = _tiny(dtype="bfloat16")
  model = Model(cfg, heads.MLMHead(cfg))
  variables = model.init(jax.random.PRNGKey(0), {"input_ids": jnp.zeros((1, 4), jnp.int32)})
  assert {x.dtype for x in jax.tree.leaves(nn.meta.unbox(variables))} == {jnp.dtype(jnp.float32)}
  logits = model.apply(variables, {"input_ids": jnp.zeros((1, 4), jnp.int32)})
  assert logits.dtype == jnp.float32


def test_parameters_carry_logical_axis_names():
  cfg = _tiny()
  shapes = jax.eval_shape(lambda: Encoder(cfg).init(jax.random.PRNGKey(0), jnp.zeros((1, 4), jnp.int32)))
  specs = nn.get_partition_spec(shapes)["params"]
  assert tuple(specs["embeddings"]["word_embeddings"]["embedding"]) == ("vocab", "embed")
  assert tuple(specs["layer_0"]["attention"]["query"]["kernel"]) == ("embed", "heads", "kv")
  assert tuple(specs["layer_0"]["mlp"]["intermediate"]["kernel"]) == ("embed", "mlp")
