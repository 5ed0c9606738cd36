"""Sequence classification (single texts or pairs): pooled encoder output → `num_labels` logits.

Besides the loss sums, `loss` returns the confusion matrix of the batch (padding rows weigh 0).
Confusion matrices add up over micro-batches, devices and eval batches like every other aux entry,
so accuracy, macro-F1, Matthews correlation and (two classes) the F1 of class 1 come out of the
same summed aux as the loss, exactly, without gathering predictions on the host: `eval.metric` can
pick the best checkpoint by GLUE's official metric. `metrics` stays scalars (what metrics.jsonl and
checkpoints record); `jaxpretrain evaluate` keeps the summed matrix itself for the report's
per-class table (`per_class_scores`).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxpretrain.models.heads import SequenceClassificationHead
from jaxpretrain.tasks.base import Task, cross_entropy_sums


@dataclasses.dataclass(frozen=True)
class SequenceClassification(Task):
  """Batch fields: `input_ids`, `attention_mask`, `token_type_ids`, `label` [batch] and `weight`
  [batch] (0 on padding rows of the last eval batch)."""

  num_labels: int = 2
  pooling: str = "cls"
  dropout: float = 0.1

  name = "classification"

  def head(self):
    return SequenceClassificationHead(
      self.model_config, num_labels=self.num_labels, pooling=self.pooling, dropout=self.dropout
    )

  def dummy_batch(self, batch_size, seq_len):
    return sequence_batch(batch_size, seq_len, jnp.int32)

  def loss(self, params, batch, rng, *, deterministic):
    _, dropout_rng = self.split_rng(rng, batch)
    logits = self.logits(params, batch, dropout_rng, deterministic=deterministic)
    weights = batch.get("weight", jnp.ones(batch["label"].shape, jnp.float32))
    loss_sum, weight, correct = cross_entropy_sums(logits, batch["label"], weights)
    return loss_sum, {
      "loss_sum": loss_sum,
      "weight": weight,
      "correct": correct,
      "confusion": confusion_matrix(batch["label"], jnp.argmax(logits, -1), weights, self.num_labels),
    }

  def predict(self, params, batch):
    """Predicted label ids [batch]."""
    return jnp.argmax(self.logits(params, batch), axis=-1)

  def metrics(self, aux):
    weight = jnp.maximum(aux["weight"], 1.0)
    out = {
      "loss": aux["loss_sum"] / weight,
      "accuracy": aux["correct"] / weight,
      "macro_f1": macro_f1(aux["confusion"]),
      "mcc": matthews_corrcoef(aux["confusion"]),
    }
    if self.num_labels == 2:  # GLUE's F1 (MRPC, QQP) is that of the positive class
      out["f1"] = class_f1(aux["confusion"], 1)
    return out


def sequence_batch(batch_size: int, seq_len: int, label_dtype) -> dict:
  """A batch of zeros with the fields of one-label-per-sequence tasks (classification, regression).

  Args:
    batch_size / seq_len: its shape.
    label_dtype: int32 for class ids, float32 for scores.

  Returns:
    {input_ids, token_type_ids, attention_mask, label, weight}.
  """
  tokens = jnp.zeros((batch_size, seq_len), jnp.int32)
  return {
    "input_ids": tokens,
    "token_type_ids": tokens,
    "attention_mask": jnp.ones_like(tokens),
    "label": jnp.zeros((batch_size,), label_dtype),
    "weight": jnp.ones((batch_size,), jnp.float32),
  }


def confusion_matrix(labels, predictions, weights, num_labels: int):
  """Weighted counts [num_labels (true), num_labels (predicted)], float32."""
  true = jax.nn.one_hot(labels, num_labels, dtype=jnp.float32) * weights.astype(jnp.float32)[:, None]
  return true.T @ jax.nn.one_hot(predictions, num_labels, dtype=jnp.float32)


def macro_f1(confusion):
  """Unweighted mean of per-class F1 over the classes that occur as truth or prediction.

  Classes absent from both are left out, as scikit-learn's `f1_score(average="macro")` does with
  the labels it sees; a class that occurs on one side only has F1 0.
  """
  tp = jnp.diagonal(confusion)
  true, predicted = confusion.sum(axis=1), confusion.sum(axis=0)
  present = (true + predicted) > 0
  f1 = 2 * tp / jnp.maximum(true + predicted, 1e-9)
  return jnp.sum(jnp.where(present, f1, 0.0)) / jnp.maximum(jnp.sum(present), 1)


def class_f1(confusion, label: int):
  """F1 of one class (scikit-learn's `f1_score(pos_label=label)`): 2·tp / (true + predicted), 0 when both are 0."""
  tp = confusion[label, label]
  return 2 * tp / jnp.maximum(confusion[label, :].sum() + confusion[:, label].sum(), 1e-9)


def matthews_corrcoef(confusion):
  """Matthews correlation of a confusion matrix, the multi-class formula (Gorodkin's R_K) scikit-learn uses.

  With c correct of s examples, t_k true and p_k predicted counts of class k:
  (c·s − Σ t_k·p_k) / sqrt((s² − Σ p_k²)(s² − Σ t_k²)); 0 when either factor is 0 (a constant side).

  Args:
    confusion: weighted counts [num_labels (true), num_labels (predicted)].

  Returns:
    A scalar in [-1, 1].
  """
  total, correct = confusion.sum(), jnp.trace(confusion)
  true, predicted = confusion.sum(axis=1), confusion.sum(axis=0)
  # On counts, not shares: a constant prediction (p = [s, 0, ...]) makes s² − Σ p² exactly 0. Sums of
  # products rather than jnp.dot, which a TPU may run at bfloat16 precision.
  covariance = correct * total - jnp.sum(true * predicted)
  spread_predicted, spread_true = total**2 - jnp.sum(predicted**2), total**2 - jnp.sum(true**2)
  defined = (spread_predicted > 0) & (spread_true > 0)
  return jnp.where(defined, covariance / jnp.sqrt(jnp.where(defined, spread_predicted * spread_true, 1.0)), 0.0)


def per_class_scores(confusion) -> dict[str, np.ndarray]:
  """Per-class precision, recall, F1 and support of a summed confusion matrix, on the host.

  Precision and recall are 0 where undefined (a class never predicted, or absent from the data),
  as scikit-learn's `zero_division=0`; F1 is 2·tp / (true + predicted), as `macro_f1` computes it.

  Args:
    confusion: counts [num_labels (true), num_labels (predicted)].

  Returns:
    {"precision", "recall", "f1", "support" (true count)}: float64 arrays [num_labels].
  """
  confusion = np.asarray(confusion, np.float64)
  tp = np.diagonal(confusion)
  true, predicted = confusion.sum(axis=1), confusion.sum(axis=0)

  def ratio(num, den):
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)

  return {
    "precision": ratio(tp, predicted),
    "recall": ratio(tp, true),
    "f1": ratio(2 * tp, true + predicted),
    "support": true,
  }
