"""KV-cached decoding: same logits as recomputing everything, padding-invariant, greedy/EOS/top-k/top-p."""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpretrain.models.heads import CausalLMHead
from jaxpretrain.models.model import Model
from jaxpretrain.tasks import decoding as gen
from tests.decoder.helpers import TINY_GPT, random_params

PROMPTS = [[2, 11, 12, 13, 14, 15], [2, 21, 22], [2]]
PAD, EOS = 0, 3


def _full_logits(apply, sequences, length):
  """Each sequence's next-token logits, recomputed from scratch by the training path (no cache):
  sequences right-padded to `length` (causal: padding after a token cannot change its logits),
  positions 0.. per row. One fixed shape, so one compilation for all steps.

  Args:
    apply: from `_jitted_apply`.
  """
  ids = np.zeros((len(sequences), length), np.int32)
  mask = np.zeros_like(ids)
  for row, sequence in enumerate(sequences):
    ids[row, : len(sequence)], mask[row, : len(sequence)] = sequence, 1
  logits = np.asarray(apply(ids, mask, np.broadcast_to(np.arange(length, dtype=np.int32), ids.shape)))
  return np.stack([logits[row, len(s) - 1] for row, s in enumerate(sequences)])


def _jitted_apply(model, params):
  """(ids, mask, positions) -> logits of the model without cache, compiled once per shape."""
  forward = jax.jit(
    lambda p, i, m, q: model.apply({"params": p}, {"input_ids": i, "attention_mask": m, "positions": q})
  )
  return lambda ids, mask, positions: forward(params, ids, mask, positions)


@pytest.mark.parametrize("scan_layers", [False, True])
def test_cached_logits_equal_full_recompute_at_every_step(scan_layers):
  cfg = dataclasses.replace(TINY_GPT, scan_layers=scan_layers)
  model = gen.lm_model(cfg)
  params = random_params(Model(cfg, CausalLMHead(cfg)))
  continuation = np.array([[31, 32, 33, 34, 35], [41, 42, 43, 44, 45], [51, 52, 53, 54, 55]], np.int32)
  ids, mask = gen.left_pad(PROMPTS, PAD)
  steps = continuation.shape[1]
  cache = gen.init_cache(model, params, len(PROMPTS), ids.shape[1] + steps)
  forward = jax.jit(lambda *args: gen.forward_cached(model, *args))
  positions = np.maximum(np.cumsum(mask, axis=1) - 1, 0)
  logits, cache = forward(params, cache, ids, mask, positions)
  cached = [np.asarray(logits[:, -1])]
  next_position = positions[:, -1] + 1
  for t in range(steps):
    logits, cache = forward(
      params, cache, continuation[:, t : t + 1], np.ones((3, 1), np.int32), (next_position + t)[:, None]
    )
    cached.append(np.asarray(logits[:, -1]))
  full_length = ids.shape[1] + steps
  apply = _jitted_apply(model, params)
  for t in range(steps + 1):
    sequences = [p + continuation[i, :t].tolist() for i, p in enumerate(PROMPTS)]
    np.testing.assert_allclose(cached[t], _full_logits(apply, sequences, full_length), atol=2e-5, rtol=1e-5)
    # The same batch left-padded, without cache: left padding changes nothing either.
    left_ids, left_mask = gen.left_pad(sequences, PAD, full_length)
    left_positions = np.maximum(np.cumsum(left_mask, axis=1) - 1, 0)
    left = apply(left_ids, left_mask, left_positions)
    np.testing.assert_allclose(cached[t], np.asarray(left[:, -1]), atol=2e-5, rtol=1e-5)


def test_decoding_keeps_the_training_parameter_tree():
  model = gen.lm_model(TINY_GPT)
  inputs = {"input_ids": jnp.zeros((2, 8), jnp.int32)}
  train = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), inputs))
  decoding = jax.eval_shape(
    lambda: model.init(jax.random.PRNGKey(0), dict(inputs, positions=inputs["input_ids"]), decode=True)
  )
  assert "cache" not in train and set(decoding) == {"params", "cache"}
  shapes = lambda tree: jax.tree.map(lambda x: (x.shape, x.dtype), nn.meta.unbox(tree))
  assert shapes(train["params"]) == shapes(decoding["params"])
  layer = decoding["cache"]["encoder"]["layer_0"]["attention"]
  assert layer["cached_key"].shape == (2, 8, TINY_GPT.num_attention_heads, TINY_GPT.head_dim)
  assert layer["cached_valid"].shape == (2, 8) and layer["cache_index"].shape == ()


def _greedy_by_recompute(apply, prompt, steps):
  sequence = list(prompt)
  for _ in range(steps):
    sequence.append(int(np.argmax(_full_logits(apply, [sequence], len(prompt) + steps)[0])))
  return sequence[len(prompt) :]


def test_greedy_is_deterministic_padding_invariant_and_matches_recompute():
  model = gen.lm_model(TINY_GPT)
  params = random_params(Model(TINY_GPT, CausalLMHead(TINY_GPT)))
  kw = dict(eos_id=-1, pad_id=PAD, max_new_tokens=8, temperature=0.0)
  batched = gen.complete(params, TINY_GPT, PROMPTS, seed=0, **kw)
  assert gen.complete(params, TINY_GPT, PROMPTS, seed=123, **kw) == batched  # greedy ignores the seed
  apply = _jitted_apply(model, params)
  for prompt, (tokens, finished) in zip(PROMPTS, batched):
    assert not finished and len(tokens) == 8
    assert tokens == _greedy_by_recompute(apply, prompt, 8)
    # Alone, in a batch of one padded to another length: the same tokens.
    assert gen.complete(params, TINY_GPT, [prompt], prompt_len=7, **kw)[0][0] == tokens


def test_generation_stops_at_eos_and_pads_after_it():
  params = random_params(Model(TINY_GPT, CausalLMHead(TINY_GPT)))
  kw = dict(pad_id=PAD, max_new_tokens=8, temperature=0.0)
  free = [tokens for tokens, _ in gen.complete(params, TINY_GPT, PROMPTS, eos_id=-1, **kw)]
  eos = free[0][2]  # the third token row 0 generates becomes the EOS
  ids, mask = gen.left_pad(PROMPTS, PAD)
  tokens, finished = gen.decode(params, ids, mask, jax.random.PRNGKey(0), model_config=TINY_GPT, eos_id=eos, **kw)
  tokens = np.asarray(tokens)
  for row in range(len(PROMPTS)):
    if eos in free[row]:
      cut = free[row].index(eos) + 1
      assert bool(finished[row])
      assert tokens[row, :cut].tolist() == free[row][:cut] and (tokens[row, cut:] == PAD).all()
    else:
      assert not bool(finished[row]) and tokens[row].tolist() == free[row]
  assert bool(finished[0])
  completed = gen.complete(params, TINY_GPT, PROMPTS, eos_id=eos, **kw)  # the texts end before EOS
  assert completed[0] == (free[0][: free[0].index(eos)], True)


PROBS = np.array([0.5, 0.2, 0.15, 0.1, 0.05])


@pytest.mark.parametrize(
  "top_k, top_p, kept",
  [(0, 1.0, [0, 1, 2, 3, 4]), (2, 1.0, [0, 1]), (0, 0.6, [0, 1]), (0, 0.5, [0]), (0, 0.8, [0, 1, 2]), (3, 0.6, [0, 1])],
)
def test_filter_keeps_the_top_k_and_the_nucleus(top_k, top_p, kept):
  logits = jnp.log(jnp.asarray(PROBS))[None, ::-1]  # reversed, so order is not position
  out = np.asarray(gen.filter_logits(logits, top_k=top_k, top_p=top_p))[0, ::-1]
  assert np.flatnonzero(np.isfinite(out)).tolist() == kept


@pytest.mark.parametrize("top_k, top_p, kept", [(3, 1.0, [0, 1, 2]), (0, 0.8, [0, 1, 2]), (2, 1.0, [0, 1])])
def test_sampling_draws_only_kept_tokens_in_proportion(top_k, top_p, kept):
  logits = jnp.broadcast_to(jnp.log(jnp.asarray(PROBS)), (4000, 5))
  draws = np.asarray(gen.sample_logits(logits, jax.random.PRNGKey(0), temperature=1.0, top_k=top_k, top_p=top_p))
  assert sorted(set(draws.tolist())) == kept
  expected = PROBS[kept] / PROBS[kept].sum()
  np.testing.assert_allclose(np.bincount(draws, minlength=5)[kept] / len(draws), expected, atol=0.03)


def test_sampling_depends_on_seed_and_temperature_sharpens():
  logits = jnp.broadcast_to(jnp.log(jnp.asarray(PROBS)), (4000, 5))
  a = np.asarray(gen.sample_logits(logits, jax.random.PRNGKey(0), temperature=1.0))
  b = np.asarray(gen.sample_logits(logits, jax.random.PRNGKey(1), temperature=1.0))
  cold = np.asarray(gen.sample_logits(logits, jax.random.PRNGKey(0), temperature=0.25))
  assert (a != b).any()
  assert np.mean(cold == 0) > 0.9 > np.mean(a == 0)


def test_prompt_plus_new_tokens_must_fit_the_positions():
  from jaxpretrain.errors import UserError

  with pytest.raises(UserError, match=r"longest prompt \(40 tokens\) plus max_new_tokens=9 exceeds the model's 48 "):
    gen.complete({}, TINY_GPT, [[2] * 40], eos_id=3, pad_id=0, max_new_tokens=9)
