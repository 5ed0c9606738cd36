"""Causal-LM pretraining (GPT): every token predicts the next one within its own document.

Rows come packed (`data.packing=gpt`, see `data/pretrain/packing.py`): documents `[BOS] text [EOS]` back
to back, each with its own segment id. The encoder's mask combines the causal mask with the
segment mask, so no token attends across a document boundary, and `model.packed_positions=
"restart"` numbers each document's positions from 0. The loss then scores exactly the next-token
pairs that lie inside one document: the first token of a document (or of a continuation piece)
is never a target, since nothing in its row may predict it.

Perplexity is exp of the token-averaged loss; it is computed from the summed aux, so it is the
exact perplexity of all scored tokens however the batch was split or how many eval batches ran.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from jaxpretrain.models.heads import CausalLMHead
from jaxpretrain.tasks.base import Task, cross_entropy_sums


def next_token_weights(batch: dict):
  """1.0 where token t+1 is a target for position t: both real and in the same document.

  Args:
    batch: `input_ids` [batch, length] plus `segment_ids` (packed rows) or `attention_mask`.

  Returns:
    float32 [batch, length - 1].
  """
  if "segment_ids" in batch:
    segments = batch["segment_ids"]
    same = (segments[:, 1:] == segments[:, :-1]) & (segments[:, 1:] != 0)
  else:
    real = batch["attention_mask"].astype(bool)
    same = real[:, 1:] & real[:, :-1]
  return same.astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class CausalLM(Task):
  """Batch fields: `input_ids` and `segment_ids` [batch, length] (or `attention_mask`)."""

  name = "causal_lm"

  def head(self):
    return CausalLMHead(self.model_config)

  def dummy_batch(self, batch_size, seq_len):
    return {
      "input_ids": jnp.zeros((batch_size, seq_len), jnp.int32),
      "segment_ids": jnp.ones((batch_size, seq_len), jnp.int32),
    }

  def target_weights(self, batch: dict):
    """Which next-token pairs the loss scores, [batch, length - 1] (subclasses narrow this)."""
    return next_token_weights(batch)

  def loss(self, params, batch, rng, *, deterministic):
    _, dropout_rng = self.split_rng(rng, batch)
    logits = self.logits(params, batch, dropout_rng, deterministic=deterministic)
    loss_sum, weight, correct = cross_entropy_sums(
      logits[:, :-1], batch["input_ids"][:, 1:], self.target_weights(batch)
    )
    return loss_sum, {"loss_sum": loss_sum, "weight": weight, "correct": correct}

  def metrics(self, aux):
    weight = jnp.maximum(aux["weight"], 1.0)
    loss = aux["loss_sum"] / weight
    return {"loss": loss, "accuracy": aux["correct"] / weight, "perplexity": jnp.exp(loss)}
