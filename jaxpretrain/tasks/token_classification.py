"""Token classification (NER-style): a label per word, scored on each word's first word piece.

Labels arrive aligned to word pieces: the first piece of a word carries the word's label, every
other position (later pieces, special tokens, padding) carries -100 and weight 0.

Entity-level precision/recall/F1 follow seqeval's default (non-strict) IOB rules: an entity starts
at `B-X`, or at `I-X` whose previous tag is `O` or of another type; it continues over following
`I-X`; a prediction counts only if its type, start and end all match a gold entity. The counts
(true positives, predicted and gold entities) are computed on device from the same forward pass
as the loss, so they sum over batches and devices like the loss does.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxpretrain.data.finetune.features import IGNORE
from jaxpretrain.models.heads import TokenClassificationHead
from jaxpretrain.tasks.base import Task, cross_entropy_sums


def tag_scheme(label_names) -> tuple[np.ndarray, np.ndarray]:
  """(is_begin [K] bool, type id [K] int, -1 for `O`) of IOB tags such as `B-PER`, `I-PER`, `O`.

  A tag without a `B-`/`I-` prefix (IO tagging: `PER`) is an inside tag of its own type.
  """
  types: dict[str, int] = {}
  begin, type_ids = [], []
  for name in label_names:
    name = str(name)
    if name == "O":
      begin.append(False)
      type_ids.append(-1)
      continue
    prefix, _, rest = name.partition("-")
    kind = rest if prefix in ("B", "I") and rest else name
    begin.append(prefix == "B" and bool(rest))
    type_ids.append(types.setdefault(kind, len(types)))
  return np.array(begin, bool), np.array(type_ids, np.int32)


def _starts(tags, valid, is_begin, type_of):
  """Entity starts and continuations at valid positions, looking back to the previous valid tag."""
  length = tags.shape[1]
  positions = jnp.arange(length)
  last_valid = jax.lax.cummax(jnp.where(valid, positions, -1), axis=1)
  previous = jnp.concatenate([jnp.full_like(last_valid[:, :1], -1), last_valid[:, :-1]], axis=1)
  kind = type_of[tags]
  previous_kind = jnp.where(previous >= 0, jnp.take_along_axis(kind, jnp.maximum(previous, 0), axis=1), -1)
  entity = valid & (kind >= 0)
  start = entity & (is_begin[tags] | (kind != previous_kind))
  return start, entity & ~start, kind


def entity_counts(predictions, labels, label_names) -> dict:
  """Entity-level (true positive, predicted, gold) counts of a batch, seqeval-style.

  Args:
    predictions: int [batch, length] predicted tag ids (ignored where labels are -100).
    labels: int [batch, length] gold tag ids, -100 at positions that are not a word's first piece.
    label_names: the tag names, e.g. ("O", "B-PER", "I-PER").

  Returns:
    dict of float32 scalars `entity_tp`, `entity_pred`, `entity_gold`.
  """
  begin, types = tag_scheme(label_names)
  is_begin, type_of = jnp.asarray(begin), jnp.asarray(types)
  valid = labels != IGNORE
  gold = jnp.where(valid, labels, 0)
  gold_start, gold_inside, gold_kind = _starts(gold, valid, is_begin, type_of)
  pred_start, pred_inside, pred_kind = _starts(predictions, valid, is_begin, type_of)
  # A gold entity is matched iff, over its span, the prediction starts and continues exactly where
  # it does with the same type, and the predicted entity does not run on past its end.
  length = labels.shape[1]
  positions = jnp.arange(length)
  next_valid = jax.lax.cummin(jnp.where(valid, positions, length), axis=1, reverse=True)
  following = jnp.concatenate([next_valid[:, 1:], jnp.full_like(next_valid[:, :1], length)], axis=1)
  has_next = following < length
  at_next = lambda x: jnp.where(has_next, jnp.take_along_axis(x, jnp.minimum(following, length - 1), axis=1), False)
  agree = (pred_start == gold_start) & (pred_kind == gold_kind)
  ends_together = at_next(gold_inside) | ~at_next(pred_inside)
  in_gold = gold_start | gold_inside
  bad = in_gold & ~(agree & ends_together)
  entity_id = jnp.cumsum(gold_start, axis=1)  # the entity each position belongs to
  rows = jnp.arange(labels.shape[0])[:, None]
  bad_per_entity = jnp.zeros((labels.shape[0], length + 1), jnp.int32).at[rows, entity_id].add(bad.astype(jnp.int32))
  matched = gold_start & (jnp.take_along_axis(bad_per_entity, entity_id, axis=1) == 0)
  f32 = lambda x: jnp.sum(x).astype(jnp.float32)
  return {"entity_tp": f32(matched), "entity_pred": f32(pred_start), "entity_gold": f32(gold_start)}


def entity_scores(tp, predicted, gold) -> dict:
  """Precision, recall and F1 from entity counts (0 where undefined, as seqeval)."""
  precision = tp / jnp.maximum(predicted, 1.0)
  recall = tp / jnp.maximum(gold, 1.0)
  return {"precision": precision, "recall": recall, "f1": 2 * tp / jnp.maximum(predicted + gold, 1.0)}


@dataclasses.dataclass(frozen=True)
class TokenClassification(Task):
  """Batch fields: `input_ids`, `attention_mask`, `token_type_ids`, `labels` [batch, length]."""

  label_names: tuple[str, ...] = ("O",)
  dropout: float = 0.1

  name = "token_classification"

  @property
  def num_labels(self) -> int:
    return len(self.label_names)

  def head(self):
    return TokenClassificationHead(self.model_config, num_labels=self.num_labels, dropout=self.dropout)

  def dummy_batch(self, batch_size, seq_len):
    tokens = jnp.zeros((batch_size, seq_len), jnp.int32)
    return {
      "input_ids": tokens,
      "token_type_ids": tokens,
      "attention_mask": jnp.ones_like(tokens),
      "labels": jnp.full((batch_size, seq_len), IGNORE, jnp.int32),
    }

  def loss(self, params, batch, rng, *, deterministic):
    _, dropout_rng = self.split_rng(rng, batch)
    logits = self.logits(params, batch, dropout_rng, deterministic=deterministic)
    labels = batch["labels"]
    valid = labels != IGNORE
    loss_sum, weight, correct = cross_entropy_sums(logits, jnp.where(valid, labels, 0), valid)
    aux = {"loss_sum": loss_sum, "weight": weight, "correct": correct}
    aux.update(entity_counts(jnp.argmax(logits, -1), labels, self.label_names))
    return loss_sum, aux

  def predict(self, params, batch):
    """Predicted tag ids [batch, length] (meaningful where `labels` is not -100)."""
    return jnp.argmax(self.logits(params, batch), axis=-1)

  def metrics(self, aux):
    weight = jnp.maximum(aux["weight"], 1.0)
    scores = entity_scores(aux["entity_tp"], aux["entity_pred"], aux["entity_gold"])
    return {"loss": aux["loss_sum"] / weight, "accuracy": aux["correct"] / weight, **scores}
