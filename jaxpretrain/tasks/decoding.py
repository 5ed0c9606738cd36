"""Text from a causal LM by jitted incremental decoding with a KV cache (`jaxpretrain generate`,
translation scores).

Prompts of different lengths share one batch left-padded: every row then writes its next token
into the same cache slot, so one scalar cache index serves the batch. Padding never counts: the
cache records which keys are real tokens (padded keys are masked out) and positions count each
row's real tokens from 0, so a padded row computes what it would alone.

The whole loop (prefill of the prompts, then one token per step) is one jitted `decode` call: a
`lax.while_loop` that stops when every row has produced EOS or `max_new_tokens` are out.
`temperature=0` is greedy (argmax); otherwise logits are divided by the temperature, cut to the
`top_k` most likely tokens and to the smallest `top_p` nucleus, and sampled.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxpretrain.errors import UserError
from jaxpretrain.models.config import ModelConfig
from jaxpretrain.models.heads import CausalLMHead
from jaxpretrain.models.model import Model


def lm_model(model_config: ModelConfig) -> Model:
  """The decoder with its tied LM head, set up for decoding (same parameter tree as training)."""
  cfg = dataclasses.replace(model_config, remat="none")  # remat only trades memory in backprop
  return Model(cfg, CausalLMHead(cfg))


def init_cache(model: Model, params, batch: int, length: int):
  """A zeroed KV cache for `batch` rows of up to `length` tokens (shapes found without compute)."""
  inputs = {
    "input_ids": jnp.zeros((batch, length), jnp.int32),
    "attention_mask": jnp.ones((batch, length), jnp.int32),
    "positions": jnp.zeros((batch, length), jnp.int32),
  }
  shapes = jax.eval_shape(
    lambda p: model.apply({"params": p}, inputs, decode=True, mutable=["cache"])[1]["cache"], params
  )
  return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


def forward_cached(model: Model, params, cache, input_ids, attention_mask, positions):
  """Runs a chunk of tokens through the cache.

  Args:
    model: from `lm_model`.
    params: the model parameters.
    cache: from `init_cache` or a previous call.
    input_ids, attention_mask, positions: int [batch, chunk].

  Returns:
    (logits [batch, chunk, vocab] float32, the updated cache).
  """
  inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "positions": positions}
  logits, variables = model.apply({"params": params, "cache": cache}, inputs, decode=True, mutable=["cache"])
  return logits, variables["cache"]


def filter_logits(logits, *, top_k: int = 0, top_p: float = 1.0):
  """Sets every token outside the `top_k` highest and the `top_p` nucleus to -inf.

  The nucleus is the smallest set of most likely tokens whose probability reaches `top_p`.
  Tokens tied with the last one kept are kept too.

  Args:
    logits: float [..., vocab].
    top_k: keep this many (0 = all).
    top_p: nucleus mass in (0, 1] (1 = all).

  Returns:
    The filtered logits.
  """
  if top_k:
    kth = jax.lax.top_k(logits, top_k)[0][..., -1:]
    logits = jnp.where(logits < kth, -jnp.inf, logits)
  if top_p < 1.0:
    ordered = jnp.flip(jnp.sort(logits, axis=-1), axis=-1)
    probs = jax.nn.softmax(ordered, axis=-1)
    before = jnp.cumsum(probs, axis=-1) - probs  # mass of the more likely tokens
    cutoff = jnp.min(jnp.where(before < top_p, ordered, jnp.inf), axis=-1, keepdims=True)
    logits = jnp.where(logits < cutoff, -jnp.inf, logits)
  return logits


def sample_logits(logits, rng, *, temperature: float, top_k: int = 0, top_p: float = 1.0):
  """One token id per row: argmax when `temperature` is 0, else a filtered, tempered sample.

  Args:
    logits: float [batch, vocab].
    rng: PRNG key.
    temperature: 0 = greedy.
    top_k, top_p: see `filter_logits`.

  Returns:
    int32 [batch].
  """
  if temperature == 0:
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)
  logits = filter_logits(logits.astype(jnp.float32) / temperature, top_k=top_k, top_p=top_p)
  return jax.random.categorical(rng, logits, axis=-1).astype(jnp.int32)


@functools.partial(
  jax.jit, static_argnames=("model_config", "max_new_tokens", "eos_id", "pad_id", "temperature", "top_k", "top_p")
)
def decode(
  params,
  prompt_ids,
  prompt_mask,
  rng,
  *,
  model_config: ModelConfig,
  max_new_tokens: int,
  eos_id: int,
  pad_id: int,
  temperature: float = 0.0,
  top_k: int = 0,
  top_p: float = 1.0,
):
  """Generates up to `max_new_tokens` after left-padded prompts.

  Args:
    params: the model parameters.
    prompt_ids, prompt_mask: int [batch, prompt_len], left-padded (mask 0 on padding); every
      row has at least one real token.
    rng: PRNG key (step i samples with fold_in(rng, i)).
    model_config: the decoder's `ModelConfig` (static).
    max_new_tokens: tokens to generate at most.
    eos_id: generation of a row stops after this token.
    pad_id: fills a row's slots after its EOS.
    temperature, top_k, top_p: see `sample_logits`.

  Returns:
    (tokens int32 [batch, max_new_tokens], finished bool [batch]: the row produced EOS).
  """
  model = lm_model(model_config)
  batch, prompt_len = prompt_ids.shape
  cache = init_cache(model, params, batch, prompt_len + max_new_tokens)
  positions = jnp.maximum(jnp.cumsum(prompt_mask, axis=1, dtype=jnp.int32) - 1, 0)
  logits, cache = forward_cached(model, params, cache, prompt_ids, prompt_mask, positions)
  state = (
    jnp.zeros((), jnp.int32),
    cache,
    logits[:, -1],
    positions[:, -1] + 1,
    jnp.zeros((batch,), bool),
    jnp.full((batch, max_new_tokens), pad_id, jnp.int32),
  )

  def cond(state):
    i, _, _, _, finished, _ = state
    return (i < max_new_tokens) & ~jnp.all(finished)

  def body(state):
    i, cache, last, position, finished, tokens = state
    token = sample_logits(last, jax.random.fold_in(rng, i), temperature=temperature, top_k=top_k, top_p=top_p)
    token = jnp.where(finished, pad_id, token)
    tokens = tokens.at[:, i].set(token)
    finished = finished | (token == eos_id)
    logits, cache = forward_cached(
      model, params, cache, token[:, None], jnp.ones((batch, 1), jnp.int32), position[:, None]
    )
    return i + 1, cache, logits[:, -1], position + 1, finished, tokens

  _, _, _, _, finished, tokens = jax.lax.while_loop(cond, body, state)
  return tokens, finished


def left_pad(sequences: list[list[int]], pad_id: int, length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """(ids, mask) int32 [len(sequences), length]: each sequence right-aligned after padding."""
  length = length or max(len(s) for s in sequences)
  ids = np.full((len(sequences), length), pad_id, np.int32)
  mask = np.zeros((len(sequences), length), np.int32)
  for row, sequence in enumerate(sequences):
    if sequence:
      ids[row, length - len(sequence) :] = sequence
      mask[row, length - len(sequence) :] = 1
  return ids, mask


def check_length(model_config: ModelConfig, prompt_len: int, max_new_tokens: int) -> None:
  """A `UserError` when prompt + generated tokens need more positions than the model has."""
  positions = model_config.max_position_embeddings - model_config.position_offset
  if prompt_len + max_new_tokens > positions:
    raise UserError(
      f"the longest prompt ({prompt_len} tokens) plus max_new_tokens={max_new_tokens} exceeds the "
      f"model's {positions} positions; shorten the prompt or lower max_new_tokens"
    )


def complete(
  params,
  model_config: ModelConfig,
  prompts: list[list[int]],
  *,
  eos_id: int,
  pad_id: int,
  max_new_tokens: int,
  batch_size: int = 0,
  prompt_len: int = 0,
  seed: int = 0,
  temperature: float = 0.0,
  top_k: int = 0,
  top_p: float = 1.0,
) -> list[tuple[list[int], bool]]:
  """Generates after each token-id prompt, in batches.

  Args:
    params: the model parameters.
    model_config: the decoder's config.
    prompts: token ids per prompt (BOS included), each non-empty.
    eos_id, pad_id: as in `decode`.
    max_new_tokens: tokens to generate at most.
    batch_size: prompts per `decode` call (0 = all at once); the last batch is filled with
      copies of a prompt so every call has the same shape and compiles once.
    prompt_len: pad every batch to this length (0 = the longest prompt).
    seed, temperature, top_k, top_p: sampling (see `sample_logits`).

  Returns:
    One (generated ids up to and without EOS, whether EOS came) per prompt.
  """
  prompt_len = prompt_len or max(len(p) for p in prompts)
  check_length(model_config, prompt_len, max_new_tokens)
  batch_size = batch_size or len(prompts)
  rng = jax.random.PRNGKey(seed)
  out = []
  for start in range(0, len(prompts), batch_size):
    chunk = prompts[start : start + batch_size]
    ids, mask = left_pad(chunk + [chunk[0]] * (batch_size - len(chunk)), pad_id, prompt_len)
    tokens, finished = decode(
      params,
      ids,
      mask,
      jax.random.fold_in(rng, start),
      model_config=model_config,
      max_new_tokens=max_new_tokens,
      eos_id=eos_id,
      pad_id=pad_id,
      temperature=temperature,
      top_k=top_k,
      top_p=top_p,
    )
    tokens, finished = np.asarray(tokens), np.asarray(finished)
    for row in range(len(chunk)):
      generated = tokens[row].tolist()
      if finished[row]:
        generated = generated[: generated.index(eos_id)]
      out.append((generated, bool(finished[row])))
  return out
