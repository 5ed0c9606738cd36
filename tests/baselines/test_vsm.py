"""Tests for the vector-space-model baseline (jaxpretrain.demo.vsm)."""

import numpy as np
import pytest

from jaxpretrain.demo.vsm import VSMBaseline, randomized_svd, word_vectors_from_doc_vectors


def _two_topic_corpus(rng, num_docs, vocab_size=64, length=20):
  """Documents drawn from either the lower or the upper half of the vocabulary; label = half."""
  labels = rng.integers(0, 2, num_docs)
  half = vocab_size // 2
  docs = [list(rng.integers(0, half, length) + half * label) for label in labels]
  return docs, labels


def test_word_vectors_match_hand_computed_formula():
  docs = [[0, 1, 1], [1, 2], [0, 0, 3]]
  doc_vectors = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, -1.0]])
  # v_w = sum_d count(d, w) v(d):
  #   w0: 1*v0 + 2*v2 = [5, -2];  w1: 2*v0 + 1*v1 = [2, 1];  w2: v1 = [0, 1];  w3: v2 = [2, -1];
  #   w4 occurs nowhere -> 0.
  expected = np.array([[5.0, -2.0], [2.0, 1.0], [0.0, 1.0], [2.0, -1.0], [0.0, 0.0]])
  got = word_vectors_from_doc_vectors(docs, doc_vectors, vocab_size=5)
  assert got.shape == (5, 2)
  np.testing.assert_array_equal(got, expected)


def test_fit_word_vectors_applies_the_formula_to_its_doc_vectors():
  docs, _ = _two_topic_corpus(np.random.default_rng(0), 60)
  model = VSMBaseline.fit_word_vectors(docs, 64, dims=4)
  assert model.word_vectors.shape == (64, 4)
  assert model.doc_vectors.shape == (60, 4)
  expected = word_vectors_from_doc_vectors(docs, model.doc_vectors, 64)
  np.testing.assert_allclose(model.word_vectors, expected, rtol=1e-6)


def test_randomized_svd_recovers_top_singular_values():
  rng = np.random.default_rng(0)
  m, n, rank = 120, 80, 8
  u, _ = np.linalg.qr(rng.standard_normal((m, n)))
  v, _ = np.linalg.qr(rng.standard_normal((n, n)))
  s = 10.0 * 0.8 ** np.arange(n)
  dense = (u * s) @ v.T
  rows, cols = np.nonzero(dense)
  got_u, got_s, got_vt = randomized_svd(rows, cols, dense[rows, cols], (m, n), rank, seed=3)
  np.testing.assert_allclose(got_s, s[:rank], rtol=1e-3)
  # The leading singular vectors agree up to sign.
  np.testing.assert_allclose(np.abs(np.sum(got_u[:, :3] * u[:, :3], axis=0)), 1.0, atol=1e-3)
  np.testing.assert_allclose(np.abs(np.sum(got_vt[:3] * v[:, :3].T, axis=1)), 1.0, atol=1e-3)


def test_classifier_separates_disjoint_vocabularies():
  rng = np.random.default_rng(1)
  unlabeled, _ = _two_topic_corpus(rng, 200)
  train, train_labels = _two_topic_corpus(rng, 100)
  test, test_labels = _two_topic_corpus(rng, 100)
  model = VSMBaseline.fit_word_vectors(unlabeled, 64, dims=8)
  model.fit_classifier(train, train_labels, num_labels=2, steps=100)
  assert model.accuracy(train, train_labels) == 1.0
  assert model.accuracy(test, test_labels) == 1.0
  assert model.predict(test).shape == (100,)


def test_deterministic_given_seed():
  rng = np.random.default_rng(2)
  docs, labels = _two_topic_corpus(rng, 80)

  def run(seed):
    model = VSMBaseline.fit_word_vectors(docs, 64, dims=4, seed=seed, max_documents=60)
    model.fit_classifier(docs, labels, num_labels=2, steps=20, seed=seed)
    return model.word_vectors, model.text_vectors(docs), model._classifier["w"]

  for a, b in zip(run(0), run(0)):
    np.testing.assert_array_equal(a, b)
  # The seed picks the max_documents subset, so another seed gives other vectors.
  assert not np.array_equal(run(0)[0], run(1)[0])


def test_rejects_out_of_range_token_ids():
  with pytest.raises(ValueError, match="token ids"):
    VSMBaseline.fit_word_vectors([[0, 1], [2, 9]], 5, dims=1)
