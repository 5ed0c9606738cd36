"""MLM masking statistics and the masked-positions head."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpretrain.models.config import ModelConfig
from jaxpretrain.tasks.mlm import MaskedLM

CFG = ModelConfig(
  vocab_size=1000,
  hidden_size=32,
  num_hidden_layers=1,
  num_attention_heads=2,
  intermediate_size=64,
  max_position_embeddings=128,
  hidden_dropout_prob=0.0,
  attention_probs_dropout_prob=0.0,
)
SPECIAL = (0, 1, 2, 3, 4)


def _batch(rows=4096, length=128, seed=0):
  rs = np.random.RandomState(seed)
  ids = rs.randint(5, 1000, (rows, length)).astype(np.int32)
  ids[:, 0] = 2  # [CLS]
  lengths = rs.randint(length // 2, length + 1, rows)
  seg = (np.arange(length)[None] < lengths[:, None]).astype(np.int32)
  ids[np.arange(rows), lengths - 1] = 3  # [SEP]
  ids[seg == 0] = 0  # [PAD]
  return jnp.asarray(ids), jnp.asarray(seg)


@pytest.mark.parametrize("head_positions", ["masked", "all"])
def test_masking_statistics(head_positions):
  task = MaskedLM(CFG, special_ids=SPECIAL, mask_id=4, head_positions=head_positions)
  ids, seg = _batch()
  m = task.mask(ids, seg != 0, jax.random.PRNGKey(0))
  selected = np.asarray(m["selected"])
  ids, new = np.asarray(ids), np.asarray(m["input_ids"])
  candidates = (seg != 0) & ~np.isin(ids, SPECIAL)
  assert not selected[~candidates].any()  # special and pad tokens never selected
  assert abs(selected.sum() / candidates.sum() - 0.15) < 0.01
  masked = (new == 4) & selected
  kept = (new == ids) & selected
  randomized = selected & ~masked & ~kept
  n = selected.sum()
  assert abs(masked.sum() / n - 0.8) < 0.01
  # a random replacement can draw the original token (1/995): "kept" is 10% plus that sliver
  assert abs(kept.sum() / n - 0.1) < 0.01
  assert abs(randomized.sum() / n - 0.1) < 0.01
  assert (new[~selected] == ids[~selected]).all()  # nothing else changes


def test_same_rng_same_mask_and_different_rng_different_mask():
  task = MaskedLM(CFG, special_ids=SPECIAL, mask_id=4)
  ids, seg = _batch(rows=8)
  a = task.mask(ids, seg != 0, jax.random.PRNGKey(3))
  b = task.mask(ids, seg != 0, jax.random.PRNGKey(3))
  c = task.mask(ids, seg != 0, jax.random.PRNGKey(4))
  np.testing.assert_array_equal(a["input_ids"], b["input_ids"])
  assert not np.array_equal(a["selected"], c["selected"])


def test_masked_head_equals_full_head_loss_and_grads():
  ids, seg = _batch(rows=4, length=32)
  batch = {"input_ids": ids, "segment_ids": seg}
  masked = MaskedLM(CFG, special_ids=SPECIAL, mask_id=4, head_positions="masked")
  full = MaskedLM(CFG, special_ids=SPECIAL, mask_id=4, head_positions="all")
  params = jax.tree.map(lambda x: x, masked.init(jax.random.PRNGKey(0), 32))
  import flax.linen as nn

  params = nn.meta.unbox(params)
  rng = jax.random.PRNGKey(7)
  (la, aux_a), ga = jax.jit(jax.value_and_grad(lambda p: masked.loss(p, batch, rng, deterministic=True), has_aux=True))(
    params
  )
  (lb, aux_b), gb = jax.jit(jax.value_and_grad(lambda p: full.loss(p, batch, rng, deterministic=True), has_aux=True))(
    params
  )
  assert float(aux_a["weight"]) == float(aux_b["weight"]) > 0
  np.testing.assert_allclose(la, lb, rtol=1e-5)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6), ga, gb)


@pytest.mark.parametrize("cap", [5, 20])
def test_max_predictions_caps_the_scored_positions(cap):
  task = MaskedLM(CFG, special_ids=SPECIAL, mask_id=4, max_predictions_per_seq=cap)
  assert task.max_predictions(128) == cap
  ids, seg = _batch(rows=512)
  m = task.mask(ids, seg != 0, jax.random.PRNGKey(0))
  selected, weights = np.asarray(m["selected"]), np.asarray(m["weights"])
  assert m["positions"].shape == (512, cap)
  # Every row keeps at most `cap` selected tokens, all of them scored; tokens selected beyond the
  # cap are left as they were (neither corrupted nor scored).
  assert (selected.sum(1) <= cap).all() and (selected.sum(1) == weights.sum(1)).all()
  assert (selected.sum(1) == cap).any()
  assert (np.asarray(m["input_ids"])[~selected] == np.asarray(ids)[~selected]).all()
  scored = np.take_along_axis(selected, np.asarray(m["positions"]), 1)
  assert (scored == weights).all()


def test_max_predictions_default_and_bad_value():
  assert MaskedLM(CFG).max_predictions(128) == 41  # 19.2 expected + 5 standard deviations
  with pytest.raises(Exception, match="task.max_predictions=-1"):
    MaskedLM(CFG, max_predictions_per_seq=-1)
