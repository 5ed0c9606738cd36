"""Sequence regression (STS-B): pooled encoder output → one score, mean squared error.

The head is the classification head with one output, as HF's `*ForSequenceClassification` with
`num_labels=1` (problem_type "regression"), so an export is that architecture. `loss` returns, besides
the squared-error sum, the sums Σp, Σl, Σp², Σl², Σpl of predictions p and labels l (padding rows
weigh 0): they add up over micro-batches, devices and eval batches like every other aux entry, so
the Pearson correlation comes out of the summed aux exactly, and `eval.metric=pearson` can pick the
best checkpoint.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jaxpretrain.models.heads import SequenceClassificationHead
from jaxpretrain.tasks.base import Task
from jaxpretrain.tasks.classification import sequence_batch


@dataclasses.dataclass(frozen=True)
class SequenceRegression(Task):
  """Batch fields: `input_ids`, `attention_mask`, `token_type_ids`, `label` [batch] (float32 scores)
  and `weight` [batch] (0 on padding rows of the last eval batch)."""

  pooling: str = "cls"
  dropout: float = 0.1

  name = "regression"

  def head(self):
    return SequenceClassificationHead(self.model_config, num_labels=1, pooling=self.pooling, dropout=self.dropout)

  def dummy_batch(self, batch_size, seq_len):
    return sequence_batch(batch_size, seq_len, jnp.float32)

  def loss(self, params, batch, rng, *, deterministic):
    _, dropout_rng = self.split_rng(rng, batch)
    scores = self.logits(params, batch, dropout_rng, deterministic=deterministic)[:, 0]
    weights = batch.get("weight", jnp.ones(scores.shape, jnp.float32)).astype(jnp.float32)
    loss_sum = jnp.sum(weights * (scores - batch["label"].astype(jnp.float32)) ** 2)
    # Raw moments cancel catastrophically in float32 when the scores hardly vary (a fresh head on a
    # barely trained encoder): they are moments of p − c instead, c the score of one fixed input. c is
    # the same in every batch and on every device, so the sums still add up, and r ignores the shift.
    shift = 0.0
    if deterministic:  # evaluation; the training rows' pearson is left unshifted
      reference = self.dummy_batch(1, batch["input_ids"].shape[1])
      shift = jax.lax.stop_gradient(self.logits(params, reference)[0, 0])
    moments = moment_sums(scores - shift, batch["label"], weights)
    return loss_sum, {"loss_sum": loss_sum, "weight": jnp.sum(weights), **moments}

  def predict(self, params, batch):
    """Predicted scores [batch]."""
    return self.logits(params, batch)[:, 0]

  def metrics(self, aux):
    return {"loss": aux["loss_sum"] / jnp.maximum(aux["weight"], 1.0), "pearson": pearson(aux)}


def moment_sums(predictions, labels, weights) -> dict:
  """The weighted sums Pearson's r needs: {"sum_p", "sum_l", "sum_pp", "sum_ll", "sum_pl"}, float32."""
  p, y, w = predictions.astype(jnp.float32), labels.astype(jnp.float32), weights.astype(jnp.float32)
  return {
    "sum_p": jnp.sum(w * p),
    "sum_l": jnp.sum(w * y),
    "sum_pp": jnp.sum(w * p * p),
    "sum_ll": jnp.sum(w * y * y),
    "sum_pl": jnp.sum(w * p * y),
  }


def pearson(aux: dict):
  """Pearson's r of summed moments (`moment_sums`) and weight n.

  r = (nΣpl − ΣpΣl) / sqrt((nΣp² − (Σp)²)(nΣl² − (Σl)²)); 0 when a side is constant, as
  `tasks/suites.py` `correlations` scores it.
  """
  n = aux["weight"]
  covariance = n * aux["sum_pl"] - aux["sum_p"] * aux["sum_l"]
  spread_p = n * aux["sum_pp"] - aux["sum_p"] ** 2
  spread_l = n * aux["sum_ll"] - aux["sum_l"] ** 2
  # Float32 rounding leaves a constant side a spread of rounding noise (even negative) rather than 0.
  defined = (spread_p > 1e-6 * n * aux["sum_pp"]) & (spread_l > 1e-6 * n * aux["sum_ll"])
  r = covariance / jnp.sqrt(jnp.where(defined, spread_p * spread_l, 1.0))
  return jnp.where(defined, jnp.clip(r, -1.0, 1.0), 0.0)
