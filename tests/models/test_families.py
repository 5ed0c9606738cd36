"""ModernBERT and Llama blocks: the same numbers as transformers' `ModernBertForMaskedLM` and
`LlamaForCausalLM` on shared random weights, scan/remat equal to the plain model, GQA decoding
equal to the full forward pass, and the family table's errors."""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpretrain.errors import UserError
from jaxpretrain.models import families, heads
from jaxpretrain.models.config import ModelConfig
from jaxpretrain.models.model import Model
from jaxpretrain.tasks import decoding
from tests.models import family_configs

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

MODERNBERT = family_configs.modernbert(
  vocab_size=61,
  intermediate_size=40,
  num_hidden_layers=4,
  hidden_act="gelu",
  local_rope_theta=10000.0,
  sliding_window=3,
)
LLAMA = family_configs.llama(vocab_size=61, intermediate_size=40, rope_theta=500.0)


def _random_torch(model, seed=0):
  gen = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for name, p in model.named_parameters():  # norm scales near 1, everything else N(0, 0.2)
      p.copy_(("norm" in name) + (0.1 if "norm" in name else 0.2) * torch.randn(p.shape, generator=gen))
  return model.eval()


def _np(t):
  return t.detach().numpy().astype(np.float32)


def _modernbert_params(sd, cfg):
  h, d, f = cfg.num_attention_heads, cfg.head_dim, cfg.intermediate_size
  enc = {
    "embeddings": {
      "word_embeddings": {"embedding": _np(sd["model.embeddings.tok_embeddings.weight"])},
      "layer_norm": {"scale": _np(sd["model.embeddings.norm.weight"])},
    },
    "final_norm": {"scale": _np(sd["model.final_norm.weight"])},
  }
  for i in range(cfg.num_hidden_layers):
    p = f"model.layers.{i}."
    qkv = _np(sd[p + "attn.Wqkv.weight"]).reshape(3, h, d, -1)
    wi = _np(sd[p + "mlp.Wi.weight"])
    layer = {
      "attention": {
        "query": {"kernel": qkv[0].transpose(2, 0, 1)},
        "key": {"kernel": qkv[1].transpose(2, 0, 1)},
        "value": {"kernel": qkv[2].transpose(2, 0, 1)},
        "output": {"kernel": _np(sd[p + "attn.Wo.weight"]).T.reshape(h, d, -1)},
      },
      "mlp_norm": {"scale": _np(sd[p + "mlp_norm.weight"])},
      "mlp": {
        "gate": {"kernel": wi[:f].T},  # HF's "input" half: the activated branch
        "intermediate": {"kernel": wi[f:].T},
        "output": {"kernel": _np(sd[p + "mlp.Wo.weight"]).T},
      },
    }
    if i:
      layer["attention_norm"] = {"scale": _np(sd[p + "attn_norm.weight"])}
    enc[f"layer_{i}"] = layer
  head = {
    "transform": {"kernel": _np(sd["head.dense.weight"]).T},
    "transform_norm": {"scale": _np(sd["head.norm.weight"])},
    "bias": _np(sd["decoder.bias"]),
  }
  return {"encoder": enc, "head": head}


def _llama_params(sd, cfg):
  h, k, d = cfg.num_attention_heads, cfg.kv_heads, cfg.head_dim
  enc = {
    "embeddings": {"word_embeddings": {"embedding": _np(sd["model.embed_tokens.weight"])}},
    "final_norm": {"scale": _np(sd["model.norm.weight"])},
  }
  for i in range(cfg.num_hidden_layers):
    p = f"model.layers.{i}."
    enc[f"layer_{i}"] = {
      "attention_norm": {"scale": _np(sd[p + "input_layernorm.weight"])},
      "attention": {
        "query": {"kernel": _np(sd[p + "self_attn.q_proj.weight"]).T.reshape(-1, h, d)},
        "key": {"kernel": _np(sd[p + "self_attn.k_proj.weight"]).T.reshape(-1, k, d)},
        "value": {"kernel": _np(sd[p + "self_attn.v_proj.weight"]).T.reshape(-1, k, d)},
        "output": {"kernel": _np(sd[p + "self_attn.o_proj.weight"]).T.reshape(h, d, -1)},
      },
      "mlp_norm": {"scale": _np(sd[p + "post_attention_layernorm.weight"])},
      "mlp": {
        "gate": {"kernel": _np(sd[p + "mlp.gate_proj.weight"]).T},
        "intermediate": {"kernel": _np(sd[p + "mlp.up_proj.weight"]).T},
        "output": {"kernel": _np(sd[p + "mlp.down_proj.weight"]).T},
      },
    }
  return {"encoder": enc, "head": {"output_embedding": _np(sd["lm_head.weight"])}}


def _inputs(seed=0, batch=2, length=12, vocab=61):
  rs = np.random.RandomState(seed)
  ids = rs.randint(5, vocab, (batch, length)).astype(np.int32)
  mask = np.ones((batch, length), np.int32)
  mask[1, 9:] = 0  # row 1: 9 real tokens, then padding
  return ids, mask


def _check_tree(model, params, cfg):
  """The hand-mapped tree has exactly the model's paths and shapes (the contract's tree)."""
  shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), {"input_ids": jnp.zeros((1, 8), jnp.int32)}))
  expected = jax.tree.map(lambda s: s.shape, nn.meta.unbox(shapes["params"]))
  assert jax.tree.map(np.shape, params) == expected


def test_modernbert_matches_transformers_masked_lm():
  cfg = MODERNBERT
  hf_cfg = transformers.ModernBertConfig(
    vocab_size=cfg.vocab_size,
    hidden_size=cfg.hidden_size,
    intermediate_size=cfg.intermediate_size,
    num_hidden_layers=cfg.num_hidden_layers,
    num_attention_heads=cfg.num_attention_heads,
    max_position_embeddings=cfg.max_position_embeddings,
    local_attention=2 * cfg.sliding_window,
    global_attn_every_n_layers=cfg.global_attn_every_n_layers,
    global_rope_theta=cfg.rope_theta,
    local_rope_theta=cfg.local_rope_theta,
    pad_token_id=0,
    attn_implementation="eager",
  )
  torch_model = _random_torch(transformers.ModernBertForMaskedLM(hf_cfg))
  ids, mask = _inputs()
  with torch.no_grad():
    expected = _np(torch_model(torch.tensor(ids).long(), attention_mask=torch.tensor(mask).long()).logits)
  model = Model(cfg, heads.MLMHead(cfg))
  params = _modernbert_params(torch_model.state_dict(), cfg)
  _check_tree(model, params, cfg)
  got = np.asarray(model.apply({"params": params}, {"input_ids": ids, "attention_mask": mask}))
  real = mask.astype(bool)
  np.testing.assert_allclose(got[real], expected[real], atol=2e-4, rtol=2e-4)


def test_llama_matches_transformers_causal_lm():
  cfg = LLAMA
  hf_cfg = transformers.LlamaConfig(
    vocab_size=cfg.vocab_size,
    hidden_size=cfg.hidden_size,
    intermediate_size=cfg.intermediate_size,
    num_hidden_layers=cfg.num_hidden_layers,
    num_attention_heads=cfg.num_attention_heads,
    num_key_value_heads=cfg.num_key_value_heads,
    max_position_embeddings=cfg.max_position_embeddings,
    rms_norm_eps=cfg.layer_norm_eps,
    rope_theta=cfg.rope_theta,
    tie_word_embeddings=False,
    attn_implementation="eager",
  )
  torch_model = _random_torch(transformers.LlamaForCausalLM(hf_cfg))
  ids, _ = _inputs()
  with torch.no_grad():
    expected = _np(torch_model(torch.tensor(ids).long()).logits)
  model = Model(cfg, heads.CausalLMHead(cfg))
  params = _llama_params(torch_model.state_dict(), cfg)
  _check_tree(model, params, cfg)
  got = np.asarray(model.apply({"params": params}, {"input_ids": ids}))
  np.testing.assert_allclose(got, expected, atol=2e-4, rtol=2e-4)


def _random_params(model, seed=0):
  shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), {"input_ids": jnp.zeros((1, 8), jnp.int32)}))
  rs = np.random.RandomState(seed)

  def draw(path, leaf):
    base = 1.0 if getattr(path[-1], "key", None) == "scale" else 0.0
    return jnp.asarray(base + 0.2 * rs.standard_normal(leaf.shape), leaf.dtype)

  return jax.tree_util.tree_map_with_path(draw, nn.meta.unbox(shapes["params"]))


def _stack(params, cfg):
  """Unrolled layer_{i} parameters stacked into the scanned `layers/block` layout (layer 0's
  missing attention norm filled with ones: the scanned layer 0 skips it)."""
  enc = dict(params["encoder"])
  layers = [enc.pop(f"layer_{i}") for i in range(cfg.num_hidden_layers)]
  if cfg.pre_ln_embedding_norm:
    layers[0] = dict(layers[0], attention_norm=jax.tree.map(jnp.ones_like, layers[1]["attention_norm"]))
  enc["layers"] = {"block": jax.tree.map(lambda *xs: jnp.stack(xs), *layers)}
  return dict(params, encoder=enc)


@pytest.mark.parametrize("cfg", [MODERNBERT, LLAMA], ids=["modernbert", "llama"])
@pytest.mark.parametrize("variant", ["scan", "remat", "scan+remat"])
def test_scan_and_remat_equal_the_plain_model(cfg, variant):
  head = heads.MLMHead if not cfg.causal else heads.CausalLMHead
  plain = Model(cfg, head(cfg))
  params = _random_params(plain)
  ids, mask = _inputs(1, length=16)
  segments = np.where(mask, np.array([[1] * 7 + [2] * 9, [1] * 9 + [0] * 7]), 0).astype(np.int32)
  batch = {"input_ids": ids, "segment_ids": segments}
  expected = np.asarray(jax.jit(plain.apply)({"params": params}, batch))
  other = dataclasses.replace(cfg, scan_layers="scan" in variant, remat="full" if "remat" in variant else "none")
  model = Model(other, head(other))
  other_params = _stack(params, cfg) if other.scan_layers else params

  def loss(p):
    return jnp.sum(model.apply({"params": p}, batch) ** 2)

  def plain_loss(p):
    return jnp.sum(plain.apply({"params": p}, batch) ** 2)

  got = np.asarray(jax.jit(model.apply)({"params": other_params}, batch))
  real = segments != 0
  np.testing.assert_allclose(got[real], expected[real], atol=1e-4, rtol=1e-4)
  # jitted: remat outside jit runs op by op, hundreds of tiny compilations
  grads, plain_grads = jax.jit(jax.grad(loss))(other_params), jax.jit(jax.grad(plain_loss))(params)
  if other.scan_layers:
    plain_grads = _stack(plain_grads, cfg)
    if cfg.pre_ln_embedding_norm:  # the stacked layer-0 norm is unused: zero gradient
      assert not np.any(np.asarray(grads["encoder"]["layers"]["block"]["attention_norm"]["scale"][0]))
      grads["encoder"]["layers"]["block"]["attention_norm"]["scale"] = plain_grads["encoder"]["layers"]["block"][
        "attention_norm"
      ]["scale"]
  for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(plain_grads)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=2e-3, rtol=2e-3)


def test_packed_rows_compute_what_their_documents_compute_alone():
  """Rotary positions restart per packed document and no window crosses a document boundary."""
  cfg = MODERNBERT
  model = Model(cfg, heads.MLMHead(cfg))
  params = _random_params(model, 3)
  rs = np.random.RandomState(4)
  a, b = rs.randint(5, 61, (1, 7)).astype(np.int32), rs.randint(5, 61, (1, 9)).astype(np.int32)
  packed = {"input_ids": np.concatenate([a, b], 1), "segment_ids": np.array([[1] * 7 + [2] * 9], np.int32)}
  together = np.asarray(model.apply({"params": params}, packed))
  alone_a = np.asarray(model.apply({"params": params}, {"input_ids": a}))
  alone_b = np.asarray(model.apply({"params": params}, {"input_ids": b}))
  np.testing.assert_allclose(together[0, :7], alone_a[0], atol=1e-4, rtol=1e-4)
  np.testing.assert_allclose(together[0, 7:], alone_b[0], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("window", [0, 3])
def test_gqa_cached_decoding_equals_the_full_forward_pass(window):
  """The KV cache holds the 2 key/value heads (not the 4 query heads) and rotates keys at their
  explicit positions: decoding token by token after a left-padded prompt gives the logits of one
  forward pass over the same real tokens."""
  cfg = dataclasses.replace(LLAMA, sliding_window=window, global_attn_every_n_layers=2)
  model = decoding.lm_model(cfg)
  params = _random_params(model, 5)
  rs = np.random.RandomState(6)
  tokens = rs.randint(5, 61, (2, 10)).astype(np.int32)
  full = np.asarray(model.apply({"params": params}, {"input_ids": tokens}))
  # Row 1's prompt is 2 tokens shorter: left-padded by 2, its positions count its real tokens.
  prompt = tokens[:, :4].copy()
  prompt_mask = np.ones_like(prompt)
  prompt[1, :2], prompt_mask[1, :2] = 0, 0
  cache = decoding.init_cache(model, params, 2, 10)
  cache_key = cache["encoder"]["layer_0"]["attention"]["cached_key"]
  assert cache_key.shape == (2, 10, cfg.kv_heads, cfg.head_dim)
  positions = np.maximum(np.cumsum(prompt_mask, 1) - 1, 0).astype(np.int32)
  logits, cache = decoding.forward_cached(model, params, cache, prompt, prompt_mask, positions)
  np.testing.assert_allclose(np.asarray(logits[0, -1]), full[0, 3], atol=1e-4, rtol=1e-4)
  row_1 = np.asarray(model.apply({"params": params}, {"input_ids": tokens[1:, 2:]}))  # its real tokens alone
  np.testing.assert_allclose(np.asarray(logits[1, -1]), row_1[0, 1], atol=1e-4, rtol=1e-4)
  for step in range(4, 10):
    next_ids = tokens[:, step : step + 1]
    pos = positions[:, -1:] + (step - 3)
    logits, cache = decoding.forward_cached(model, params, cache, next_ids, np.ones_like(next_ids), pos)
    np.testing.assert_allclose(np.asarray(logits[0, -1]), full[0, step], atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(np.asarray(logits[1, -1]), row_1[0, step - 2], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
  "change,message",
  [
    (
      dict(family="llama", **families.fixed("llama"), num_key_value_heads=3),
      "model.num_attention_heads=4 is not divisible by model.num_key_value_heads=3",
    ),
    (dict(sliding_window=64), r"model.sliding_window=64 must be in \[0, model.max_position_embeddings=64\)"),
    (dict(family="t5"), "model.family='t5'; choose auto, bert, roberta, gpt2, modernbert, llama"),
    (dict(hidden_size=36, num_attention_heads=4, family="auto"), "needs an even head size"),
    (dict(causal=True), r"model.causal=True contradicts model.family=modernbert \(which fixes model.causal=False\)"),
  ],
)
def test_bad_switches_are_one_line_errors(change, message):
  with pytest.raises(UserError, match=message) as e:
    dataclasses.replace(MODERNBERT, **change).validate()
  assert "\n" not in str(e.value)


def test_auto_family_is_inferred_from_the_switches():
  assert families.resolve(ModelConfig()) == "bert"
  assert families.resolve(ModelConfig(position_offset=2)) == "roberta"
  gpt = ModelConfig(pre_layer_norm=True, causal=True, use_pooler=False)
  assert families.resolve(gpt) == "gpt2"
  assert families.resolve(dataclasses.replace(MODERNBERT, family="auto")) == "modernbert"
  assert families.resolve(dataclasses.replace(LLAMA, family="auto")) == "llama"
  assert families.resolve(dataclasses.replace(gpt, gated_mlp=True)) is None


@pytest.mark.parametrize(
  "head,names",
  [
    (heads.SequenceClassificationHead(MODERNBERT, num_labels=3), {"transform", "transform_norm", "classifier"}),
    (heads.TokenClassificationHead(MODERNBERT, num_labels=5), {"transform", "transform_norm", "classifier"}),
    (heads.QuestionAnsweringHead(MODERNBERT), {"transform", "transform_norm", "qa_outputs"}),
  ],
)
def test_modernbert_fine_tuning_heads_run_its_prediction_head_first(head, names):
  """Classification, token classification and QA: dense (no bias) + GELU + bias-free LayerNorm, then the
  classifier (ModernBertPredictionHead); the final layer keeps its bias, as HF's classifier does."""
  model = Model(MODERNBERT, head)
  ids, mask = _inputs(7)
  variables = model.init(jax.random.PRNGKey(0), {"input_ids": ids, "attention_mask": mask})
  params = nn.meta.unbox(variables["params"])["head"]
  assert set(params) == names
  assert set(params["transform"]) == {"kernel"} and set(params["transform_norm"]) == {"scale"}
  assert "bias" in params[(names - {"transform", "transform_norm"}).pop()]
  out = model.apply(variables, {"input_ids": ids, "attention_mask": mask})
  assert all(np.all(np.isfinite(np.asarray(o))) for o in jax.tree.leaves(out))
