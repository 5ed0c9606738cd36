"""`argmax_equals` (the "correct" count of every cross-entropy task) agrees with `argmax == label` exactly."""

import jax.numpy as jnp
import numpy as np

from jaxpretrain.tasks.base import argmax_equals, cross_entropy_sums


def test_agrees_with_argmax_on_random_logits_ties_and_labels_out_of_range():
  rs = np.random.RandomState(0)
  logits = rs.randn(64, 50).astype(np.float32)
  logits[:4] = 0.0  # every class ties: only class 0 (argmax's first maximum) is a match
  logits[4:8, [3, 9]] = 10.0  # two classes tie for the maximum: the earlier one matches
  labels = np.where(rs.rand(64) < 0.5, logits.argmax(-1), rs.randint(0, 50, 64)).astype(np.int32)
  labels[:8] = [0, 1, 0, 49, 3, 9, 9, 3]
  labels[8:10] = [-100, 50]  # ignored positions (-100) and labels past the classes never match
  got = np.asarray(argmax_equals(jnp.asarray(logits), jnp.asarray(labels)))
  np.testing.assert_array_equal(got, logits.argmax(-1) == labels)
  assert got[:8].tolist() == [True, False, True, False, True, False, False, True]
  assert 10 < got.sum() < 60  # both outcomes occur


def test_agrees_on_batched_logits_and_counts_correct_predictions():
  rs = np.random.RandomState(1)
  logits = rs.randn(3, 7, 5).astype(np.float32)
  labels = rs.randint(0, 5, (3, 7)).astype(np.int32)
  np.testing.assert_array_equal(argmax_equals(jnp.asarray(logits), jnp.asarray(labels)), logits.argmax(-1) == labels)
  weights = (rs.rand(3, 7) < 0.7).astype(np.float32)
  _, _, correct = cross_entropy_sums(jnp.asarray(logits), jnp.asarray(labels), jnp.asarray(weights))
  assert float(correct) == float(((logits.argmax(-1) == labels) * weights).sum())
