"""Classical vector-space-model baseline: LSA document vectors -> word vectors -> linear classifier.

How the document vectors v(d) are built, from the unlabeled corpus D (token-id lists):

1. Counts. `count(d, w)` = occurrences of token id w in document d, kept sparse as (doc, word,
   count) triples; the dense [|D|, vocab] matrix never exists.
2. TF-IDF. `tf = 1 + log(count)` (sublinear, the default) or `tf = count`;
   `idf(w) = log((1 + |D|) / (1 + df(w))) + 1`, df = number of documents containing w
   (scikit-learn's smoothed idf: finite for unseen words, never 0). Each row tf * idf is then
   l2-normalized, so long documents do not dominate.
3. Truncated SVD. A randomized SVD (Halko et al. 2011: random projection, power iterations with
   QR re-orthonormalisation, then an exact SVD of the small projected matrix) gives
   X ~= U_k S_k V_k^T, and v(d) = row d of U_k S_k, i.e. the document's coordinates in the top-k
   latent directions (what LSA / scikit-learn's TruncatedSVD.transform return). Singular-vector
   signs are fixed so the output depends only on the seed.

Word vectors are then v_w = sum_d count(d, w) * v(d) (`word_vectors_from_doc_vectors`). A labeled
text's vector is the tf-idf weighted sum of its words' unit-length word vectors, l2-normalized, and
a multinomial logistic regression (L2 penalty, full-batch Adam via optax) classifies those.

All sparse products are jax `segment_sum`s over the triples, in fixed-size chunks so the
[nnz, k] gathered intermediate never has to fit in memory at once.
"""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax

# Edges per chunk of a sparse product: 64k x ~140 float32 ~ 36 MB of gathered rows at a time.
_CHUNK = 1 << 16


class _Coo:
  """A sparse [num_rows, num_cols] matrix as (row, col, value) triples padded to whole chunks."""

  def __init__(self, rows, cols, values, shape):
    self.shape = shape
    pad = -len(values) % _CHUNK

    # Padding edges carry value 0 and point at the last row, so rows stay sorted.
    def chunked(a, dtype, fill):
      return np.pad(a.astype(dtype), (0, pad), constant_values=fill).reshape(-1, _CHUNK)

    self.rows = chunked(rows, np.int32, shape[0] - 1)
    self.cols = chunked(cols, np.int32, shape[1] - 1)
    self.values = chunked(values, np.float32, 0)

  def matmul(self, dense):
    """self @ dense, dense: [num_cols, r] -> [num_rows, r]."""
    return _segment_matmul(self.rows, self.cols, self.values, jnp.asarray(dense), self.shape[0], True)

  def rmatmul(self, dense):
    """self.T @ dense, dense: [num_rows, r] -> [num_cols, r]."""
    return _segment_matmul(self.cols, self.rows, self.values, jnp.asarray(dense), self.shape[1], False)


@functools.partial(jax.jit, static_argnames=("num_out", "out_sorted"))
def _segment_matmul(out_ids, in_ids, values, dense, num_out, out_sorted):
  """out[o] = sum over edges e with out_ids[e] == o of values[e] * dense[in_ids[e]]."""

  def step(acc, chunk):
    out, inp, val = chunk
    part = jax.ops.segment_sum(val[:, None] * dense[inp], out, num_out, indices_are_sorted=out_sorted)
    return acc + part, None

  init = jnp.zeros((num_out, dense.shape[1]), dense.dtype)
  acc, _ = jax.lax.scan(step, init, (out_ids, in_ids, values))
  return acc


def _count_triples(documents, vocab_size):
  """(doc, word, count) triples of token-id lists, sorted by doc then word."""
  lengths = np.fromiter(map(len, documents), np.int64, len(documents))
  ids = np.fromiter(itertools.chain.from_iterable(documents), np.int64, int(lengths.sum()))
  if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
    raise ValueError(f"token ids must lie in [0, {vocab_size}), got [{ids.min()}, {ids.max()}]")
  doc = np.repeat(np.arange(len(documents), dtype=np.int64), lengths)
  # One sort of doc * V + word both dedups the pairs and leaves them in row-major order.
  keys, counts = np.unique(doc * vocab_size + ids, return_counts=True)
  return keys // vocab_size, keys % vocab_size, counts


def _tf(counts, sublinear):
  return 1.0 + np.log(counts) if sublinear else counts.astype(np.float64)


def word_vectors_from_doc_vectors(documents: list[list[int]], doc_vectors, vocab_size: int) -> np.ndarray:
  """Word vectors v_w = sum_{d in D} count(d, w) * v(d).

  Args:
    documents: token-id lists, one per row of `doc_vectors`.
    doc_vectors: [len(documents), k] document vectors v(d).
    vocab_size: number of word ids; words that never occur get a zero vector.

  Returns:
    [vocab_size, k] float32 word vectors.
  """
  if len(documents) != len(doc_vectors):
    raise ValueError(f"{len(documents)} documents but {len(doc_vectors)} document vectors")
  return _word_vectors(*_count_triples(documents, vocab_size), doc_vectors, vocab_size)


def _word_vectors(docs, words, counts, doc_vectors, vocab_size):
  matrix = _Coo(docs, words, counts, (len(doc_vectors), vocab_size))
  return np.asarray(matrix.rmatmul(np.asarray(doc_vectors, np.float32)))


def randomized_svd(
  rows: np.ndarray,
  cols: np.ndarray,
  values: np.ndarray,
  shape: tuple[int, int],
  rank: int,
  *,
  oversample: int = 10,
  power_iters: int = 2,
  seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Top-`rank` SVD of a sparse matrix touched only through products with thin dense matrices.

  Args:
    rows, cols, values: the nonzero entries X[rows[e], cols[e]] += values[e].
    shape: (m, n) of X.
    rank: number of singular triplets to return; at most min(m, n).
    oversample: extra random directions, which make the top `rank` ones accurate.
    power_iters: passes of (X X^T) that sharpen a slowly decaying spectrum.
    seed: seed of the random projection.

  Returns:
    (u [m, rank], s [rank] descending, vt [rank, n]) with X ~= u @ diag(s) @ vt.
  """
  m, n = shape
  if not 0 < rank <= min(m, n):
    raise ValueError(f"rank={rank} must lie in [1, min{tuple(shape)}]: too few documents/words?")
  matrix = _Coo(np.asarray(rows), np.asarray(cols), np.asarray(values), (m, n))
  width = min(rank + oversample, m, n)
  omega = jax.random.normal(jax.random.key(seed), (n, width), jnp.float32)
  q, _ = jnp.linalg.qr(matrix.matmul(omega))
  for _ in range(power_iters):
    # Re-orthonormalise after every product: without it float32 loses all but the top direction.
    z, _ = jnp.linalg.qr(matrix.rmatmul(q))
    q, _ = jnp.linalg.qr(matrix.matmul(z))
  # X ~= Q B with B = Q^T X; B^T = X^T Q is [n, width], so its SVD is cheap.
  b_t = matrix.rmatmul(q)
  w, s, zt = jnp.linalg.svd(b_t, full_matrices=False)  # B^T = w s zt  =>  X ~= (Q zt^T) s w^T
  u, vt = np.asarray(q @ zt.T)[:, :rank], np.asarray(w.T)[:rank]
  s = np.asarray(s)[:rank]
  # Sign convention (as scikit-learn's svd_flip): each row of vt has its largest |entry| positive.
  signs = np.sign(vt[np.arange(rank), np.abs(vt).argmax(axis=1)])
  signs[signs == 0] = 1
  return u * signs, s, vt * signs[:, None]


@functools.partial(jax.jit, static_argnames=("num_labels", "steps"))
def _train_logreg(x, labels, key, l2, learning_rate, num_labels, steps):
  w = 0.01 * jax.random.normal(key, (x.shape[1], num_labels))
  params = {"w": w, "b": jnp.zeros(num_labels)}
  opt = optax.adam(learning_rate)

  def loss_fn(p):
    logits = x @ p["w"] + p["b"]
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return ce + 0.5 * l2 * jnp.sum(p["w"] ** 2)  # bias unpenalised, as usual

  def step(carry, _):
    p, state = carry
    grads = jax.grad(loss_fn)(p)
    updates, state = opt.update(grads, state, p)
    return (optax.apply_updates(p, updates), state), None

  (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
  return params


class VSMBaseline:
  """LSA word vectors plus a logistic-regression classifier on text vectors built from them."""

  def __init__(
    self,
    word_vectors: np.ndarray,
    idf: np.ndarray,
    *,
    sublinear_tf: bool = True,
    doc_vectors: np.ndarray | None = None,
    singular_values: np.ndarray | None = None,
  ):
    """Wraps already computed vectors; use `fit_word_vectors` to compute them from a corpus.

    Args:
      word_vectors: [vocab_size, dims] word vectors.
      idf: [vocab_size] idf of the unlabeled corpus, reused to weight words of labeled texts.
      sublinear_tf: whether tf is 1 + log(count) rather than count.
      doc_vectors: [num_documents, dims] v(d) the word vectors came from, kept for inspection.
      singular_values: [dims] singular values of the TF-IDF matrix.
    """
    self.word_vectors = np.asarray(word_vectors, np.float32)
    self.idf = np.asarray(idf, np.float64)
    self.sublinear_tf = sublinear_tf
    self.doc_vectors = doc_vectors
    self.singular_values = singular_values
    self.vocab_size, self.dims = self.word_vectors.shape
    norms = np.linalg.norm(self.word_vectors, axis=1, keepdims=True)
    # |v_w| grows with the word's corpus frequency; unit vectors leave the weighting to tf-idf.
    self._unit_word_vectors = self.word_vectors / np.maximum(norms, 1e-12)
    self._classifier = None

  @classmethod
  def fit_word_vectors(
    cls,
    documents: list[list[int]],
    vocab_size: int,
    *,
    dims: int = 128,
    seed: int = 0,
    max_documents: int | None = None,
    sublinear_tf: bool = True,
    power_iters: int = 2,
  ) -> "VSMBaseline":
    """Builds v(d) from an unlabeled corpus (see the module docstring) and v_w from them.

    Args:
      documents: token-id lists, special tokens absent.
      vocab_size: size of the token-id space.
      dims: k, the number of latent dimensions.
      seed: seed of the document subsample and of the SVD's random projection.
      max_documents: if set and exceeded, a seeded random subset of this many documents is used.
      sublinear_tf: tf = 1 + log(count) instead of count.
      power_iters: power iterations of the randomized SVD.

    Returns:
      The baseline with `word_vectors` [vocab_size, dims] set and no classifier yet.
    """
    if max_documents is not None and len(documents) > max_documents:
      rng = np.random.default_rng(seed)
      keep = np.sort(rng.choice(len(documents), max_documents, replace=False))
      documents = [documents[i] for i in keep]
    rows, cols, raw = _count_triples(documents, vocab_size)
    n_docs = len(documents)
    df = np.bincount(cols, minlength=vocab_size)
    idf = np.log((1.0 + n_docs) / (1.0 + df)) + 1.0
    tfidf = _tf(raw, sublinear_tf) * idf[cols]
    norms = np.sqrt(np.bincount(rows, weights=tfidf**2, minlength=n_docs))
    tfidf /= np.maximum(norms, 1e-12)[rows]
    u, s, _ = randomized_svd(rows, cols, tfidf, (n_docs, vocab_size), dims, power_iters=power_iters, seed=seed)
    doc_vectors = (u * s).astype(np.float32)
    # What word_vectors_from_doc_vectors computes, reusing the count triples built above.
    word_vectors = _word_vectors(rows, cols, raw, doc_vectors, vocab_size)
    return cls(word_vectors, idf, sublinear_tf=sublinear_tf, doc_vectors=doc_vectors, singular_values=s)

  def text_vectors(self, texts: list[list[int]]) -> np.ndarray:
    """Unit-length text vectors: sum_w tf-idf(t, w) * v_w / |v_w|, then l2-normalized.

    Args:
      texts: token-id lists.

    Returns:
      [len(texts), dims] float32; all-zero for a text none of whose words occur in the corpus.
    """
    if not texts:
      return np.zeros((0, self.dims), np.float32)
    rows, cols, counts = _count_triples(texts, self.vocab_size)
    weights = _tf(counts, self.sublinear_tf) * self.idf[cols]
    matrix = _Coo(rows, cols, weights, (len(texts), self.vocab_size))
    vectors = np.asarray(matrix.matmul(self._unit_word_vectors))
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

  def fit_classifier(
    self,
    texts: list[list[int]],
    labels: np.ndarray,
    num_labels: int,
    *,
    l2: float = 1e-3,
    steps: int = 300,
    seed: int = 0,
    learning_rate: float = 0.1,
  ) -> None:
    """Trains multinomial logistic regression on standardized text vectors, full batch.

    Args:
      texts: token-id lists of the labeled training texts.
      labels: [len(texts)] integer label ids in [0, num_labels).
      num_labels: number of classes.
      l2: weight of 0.5 * |W|^2 added to the mean cross-entropy.
      steps: Adam steps.
      seed: seed of the (small, random) initial weights.
      learning_rate: Adam learning rate.
    """
    x = self.text_vectors(texts)
    labels = np.asarray(labels, np.int32)
    if labels.shape != (len(texts),):
      raise ValueError(f"labels has shape {labels.shape}, expected ({len(texts)},)")
    # LSA's first direction is shared by nearly every text; standardizing keeps Adam's single
    # learning rate suitable for all features.
    self._mean, self._scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    x = jnp.asarray((x - self._mean) / self._scale)
    params = _train_logreg(x, jnp.asarray(labels), jax.random.key(seed), l2, learning_rate, num_labels, steps)
    self._classifier = jax.tree.map(np.asarray, params)

  def predict(self, texts: list[list[int]]) -> np.ndarray:
    """Predicted label ids.

    Args:
      texts: token-id lists.

    Returns:
      [len(texts)] int label ids.
    """
    if self._classifier is None:
      raise RuntimeError("call fit_classifier before predict")
    x = (self.text_vectors(texts) - self._mean) / self._scale
    return np.argmax(x @ self._classifier["w"] + self._classifier["b"], axis=1)

  def accuracy(self, texts: list[list[int]], labels: np.ndarray) -> float:
    """Fraction of `texts` whose predicted label equals `labels`.

    Args:
      texts: token-id lists.
      labels: [len(texts)] true label ids.

    Returns:
      Accuracy in [0, 1].
    """
    return float(np.mean(self.predict(texts) == np.asarray(labels)))
