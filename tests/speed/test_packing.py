"""Packed rows compute exactly what their documents compute unpacked: same loss, same gradients.

This rests on two switches: segment-aware attention masks (documents never see each other) and
positions that restart at every document (`model.packed_positions="restart"`, the default).
"""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpretrain.models import heads
from jaxpretrain.models.config import ModelConfig
from jaxpretrain.models.encoder import segment_positions
from jaxpretrain.models.model import Model
from jaxpretrain.tasks.base import cross_entropy_sums

T = 32
LENGTHS = (9, 13, 7)  # three documents packed into one row of 32 (3 padding slots)
BERT = ModelConfig(
  vocab_size=97,
  hidden_size=32,
  num_hidden_layers=1,
  num_attention_heads=4,
  intermediate_size=64,
  max_position_embeddings=T,
  hidden_dropout_prob=0.0,
  attention_probs_dropout_prob=0.0,
)
GPT = dataclasses.replace(BERT, causal=True, pre_layer_norm=True, use_pooler=False, type_vocab_size=0)


def test_segment_positions_restart_per_document():
  seg = jnp.array([[1, 1, 1, 2, 2, 0], [1, 2, 2, 2, 3, 3]])
  np.testing.assert_array_equal(segment_positions(seg), [[0, 1, 2, 0, 1, 0], [0, 0, 1, 2, 0, 1]])


def _documents():
  rs = np.random.RandomState(0)
  return [rs.randint(5, BERT.vocab_size, n).astype(np.int32) for n in LENGTHS]


def _rows(documents, packed):
  """(input_ids, segment_ids, doc_start): one packed row, or one padded row per document."""
  if packed:
    ids, seg = np.zeros((1, T), np.int32), np.zeros((1, T), np.int32)
    start, starts = 0, []
    for i, doc in enumerate(documents):
      ids[0, start : start + len(doc)], seg[0, start : start + len(doc)] = doc, i + 1
      starts.append((0, start))
      start += len(doc)
    return ids, seg, starts
  ids, seg = np.zeros((len(documents), T), np.int32), np.zeros((len(documents), T), np.int32)
  for i, doc in enumerate(documents):
    ids[i, : len(doc)], seg[i, : len(doc)] = doc, 1
  return ids, seg, [(i, 0) for i in range(len(documents))]


def _mlm_loss(cfg, params, documents, packed):
  """MLM loss sum over fixed 'selected' tokens (every 3rd of each document), head on those only."""
  ids, seg, starts = _rows(documents, packed)
  picks = [[] for _ in range(ids.shape[0])]
  for (row, start), doc in zip(starts, documents):
    picks[row] += [start + j for j in range(0, len(doc), 3)]
  k = max(len(p) for p in picks)
  positions = np.array([p + [0] * (k - len(p)) for p in picks], np.int32)
  weights = np.array([[1] * len(p) + [0] * (k - len(p)) for p in picks], np.float32)
  targets = np.take_along_axis(ids, positions, 1)
  masked = ids.copy()
  for row, p in enumerate(picks):
    masked[row, p] = 4  # [MASK] on the selected tokens
  inputs = {"input_ids": jnp.asarray(masked), "segment_ids": jnp.asarray(seg)}
  logits = Model(cfg, heads.MLMHead(cfg)).apply({"params": params}, inputs, positions=jnp.asarray(positions))
  return cross_entropy_sums(logits, jnp.asarray(targets), jnp.asarray(weights))[0]


def _lm_loss(cfg, params, documents, packed):
  """Next-token loss sum within each document."""
  ids, seg, _ = _rows(documents, packed)
  logits = Model(cfg, heads.CausalLMHead(cfg)).apply(
    {"params": params}, {"input_ids": jnp.asarray(ids), "segment_ids": jnp.asarray(seg)}
  )
  targets = np.roll(ids, -1, axis=1)
  weights = (seg != 0) & (np.roll(seg, -1, axis=1) == seg)
  weights[:, -1] = False
  return cross_entropy_sums(logits, jnp.asarray(targets), jnp.asarray(weights))[0]


CASES = {"mlm": (BERT, heads.MLMHead, _mlm_loss), "causal_lm": (GPT, heads.CausalLMHead, _lm_loss)}


def _params(cfg, head):
  model = Model(cfg, head(cfg))
  init = jax.jit(lambda rng: model.init(rng, {"input_ids": jnp.zeros((1, T), jnp.int32)})["params"])
  return nn.meta.unbox(init(jax.random.PRNGKey(0)))  # jitted: op-by-op init compiles every op


@pytest.mark.parametrize("case", CASES)
def test_packed_loss_and_grads_equal_unpacked(case):
  cfg, head, loss = CASES[case]
  params, documents = _params(cfg, head), _documents()
  packed, g_packed = jax.jit(jax.value_and_grad(lambda p: loss(cfg, p, documents, True)))(params)
  unpacked, g_unpacked = jax.jit(jax.value_and_grad(lambda p: loss(cfg, p, documents, False)))(params)
  assert float(unpacked) > 0
  np.testing.assert_allclose(packed, unpacked, rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), g_packed, g_unpacked)


def test_continuing_positions_break_the_equality():
  cfg, head, loss = CASES["mlm"]
  cfg = dataclasses.replace(cfg, packed_positions="continue")
  params, documents = _params(cfg, head), _documents()
  packed, unpacked = (
    jax.jit(lambda p, packed=packed: loss(cfg, p, documents, packed))(params) for packed in (True, False)
  )
  assert abs(float(packed) - float(unpacked)) > 1e-3
