"""Extractive question answering: start/end logits over the tokens of `[CLS] question [SEP] context`.

Targets are token positions (SQuAD-style features, see `data/finetune/features.encode_qa`); a feature whose
window does not contain the answer points both at [CLS] (position 0), as in BERT. The loss is the
mean of the start and end cross-entropies. EM/F1 on answer text need the host-side
post-processing in `qa_postprocess.py`; on device the task reports the share of features whose
argmax span is exactly the target span. `qa_scores` runs that post-processing for `evaluate`.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxpretrain.models.heads import QuestionAnsweringHead
from jaxpretrain.tasks.base import Task


@dataclasses.dataclass(frozen=True)
class QuestionAnswering(Task):
  """Batch fields: `input_ids`, `attention_mask`, `token_type_ids`, `start_positions`,
  `end_positions` [batch] and `weight` [batch] (0 on padding rows)."""

  max_answer_length: int = 30
  n_best: int = 20

  name = "qa"

  def head(self):
    return QuestionAnsweringHead(self.model_config)

  def dummy_batch(self, batch_size, seq_len):
    tokens = jnp.zeros((batch_size, seq_len), jnp.int32)
    positions = jnp.zeros((batch_size,), jnp.int32)
    return {
      "input_ids": tokens,
      "token_type_ids": tokens,
      "attention_mask": jnp.ones_like(tokens),
      "start_positions": positions,
      "end_positions": positions,
      "weight": jnp.ones((batch_size,), jnp.float32),
    }

  def loss(self, params, batch, rng, *, deterministic):
    _, dropout_rng = self.split_rng(rng, batch)
    start, end = self.logits(params, batch, dropout_rng, deterministic=deterministic)
    weights = batch.get("weight", jnp.ones(batch["start_positions"].shape, jnp.float32)).astype(jnp.float32)
    per_example = 0.5 * (
      optax.softmax_cross_entropy_with_integer_labels(start, batch["start_positions"])
      + optax.softmax_cross_entropy_with_integer_labels(end, batch["end_positions"])
    )
    exact = (
      (jnp.argmax(start, -1) == batch["start_positions"]) & (jnp.argmax(end, -1) == batch["end_positions"])
    ).astype(jnp.float32)
    loss_sum = jnp.sum(per_example * weights)
    return loss_sum, {"loss_sum": loss_sum, "weight": jnp.sum(weights), "span_exact": jnp.sum(exact * weights)}

  def predict(self, params, batch):
    """(start, end) logits for post-processing."""
    return self.logits(params, batch)

  def metrics(self, aux):
    weight = jnp.maximum(aux["weight"], 1.0)
    return {"loss": aux["loss_sum"] / weight, "span_accuracy": aux["span_exact"] / weight}


def qa_scores(config, task: QuestionAnswering, params, strategy, tokenizer, kind) -> dict:
  """SQuAD exact match and F1 of the post-processed predictions on the eval examples.

  Args:
    config: the run config (`data.*`, `eval.batch_size`).
    task: the run's `QuestionAnswering`.
    params: the parameters to score.
    strategy: the run's parallel strategy (`put_batch`).
    tokenizer: the run's `Tokenizer`.
    kind: the `LabeledKind` of the eval records (`data/finetune/kinds.py`: QA).

  Returns:
    {"exact_match", "f1"} (`qa_postprocess.squad_scores`).
  """
  from jaxpretrain.data.finetune import features, labeled
  from jaxpretrain.data.finetune.batches import padded_batches
  from jaxpretrain.tasks import qa_postprocess

  records, _, _ = labeled.read(config, "eval", kind)
  arrays, feature_examples, offsets = features.encode_qa(
    records, tokenizer, config.data.seq_len, config.data.doc_stride
  )
  batch_size = config.eval.batch_size or config.train.batch_size
  predict = jax.jit(task.predict)
  starts, ends = [], []
  for batch in padded_batches(arrays, batch_size, buckets=0):  # logits of every feature at full length, stacked
    start, end = predict(params, strategy.put_batch(batch))
    starts.append(np.asarray(start))
    ends.append(np.asarray(end))
  n = len(feature_examples)
  answers = qa_postprocess.best_answers(
    [r["context"] for r in records],
    feature_examples,
    offsets,
    np.concatenate(starts)[:n],
    np.concatenate(ends)[:n],
    n_best=task.n_best,
    max_answer_length=task.max_answer_length,
  )
  return qa_postprocess.squad_scores(answers, [r["answers"] for r in records])
