"""Masked-LM pretraining (BERT): masking on device inside the jitted step, loss on selected tokens.

Masking follows Devlin et al.: each non-special, non-pad token is selected with probability
`mask_prob` (15%); a selected token becomes [MASK] with probability 0.8, a random token with
0.1 and stays itself with 0.1. The loss averages over selected positions only. Everything is
drawn from the step's RNG, so a (seed, step) pair fixes the mask.

By default the head runs only on the selected positions (gathered before the vocabulary
projection, up to `max_predictions` per row — by default 5 standard deviations above the
expected count, so overflow is vanishingly rare; `task.max_predictions` sets a smaller cap, as
BERT's max_predictions_per_seq does. Selected tokens beyond the cap are left unmasked and
unscored rather than silently mis-weighted). `head_positions="all"` scores every position:
same loss, more FLOPs.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from jaxpretrain.errors import UserError
from jaxpretrain.models.heads import MLMHead
from jaxpretrain.tasks.base import Task, cross_entropy_sums, model_inputs


@dataclasses.dataclass(frozen=True)
class MaskedLM(Task):
  special_ids: tuple[int, ...] = (0, 1, 2, 3, 4)
  mask_id: int = 4
  random_vocab_size: int = 0  # random replacements come from [0, this); 0 = model vocab
  mask_prob: float = 0.15
  mask_token_prob: float = 0.8
  random_token_prob: float = 0.1
  head_positions: str = "masked"  # masked | all
  max_predictions_per_seq: int = 0  # masked head: rows scored per sequence; 0 = the 5-sigma bound

  name = "mlm"

  def __post_init__(self):
    if self.head_positions not in ("masked", "all"):
      raise UserError(f"task.head_positions={self.head_positions!r}; choose masked or all")
    if self.max_predictions_per_seq < 0:
      raise UserError(f"task.max_predictions={self.max_predictions_per_seq} must be >= 0 (0 = automatic)")

  def head(self):
    return MLMHead(self.model_config)

  def dummy_batch(self, batch_size, seq_len):
    return {
      "input_ids": jnp.zeros((batch_size, seq_len), jnp.int32),
      "segment_ids": jnp.ones((batch_size, seq_len), jnp.int32),
    }

  def max_predictions(self, seq_len: int) -> int:
    """Positions per row the masked head scores: `max_predictions_per_seq` (BERT's
    max_predictions_per_seq: 20 at seq 128, 80 at 512) or, when 0, 5 standard deviations above
    the expected number selected."""
    if self.max_predictions_per_seq:
      return min(seq_len, self.max_predictions_per_seq)
    expected = seq_len * self.mask_prob
    return min(seq_len, max(1, math.ceil(expected + 5 * math.sqrt(expected * (1 - self.mask_prob)) + 1)))

  def mask(self, input_ids, token_mask, rng, example_index=None):
    """Draws the MLM corruption.

    Each row's randomness comes from fold_in(rng, its index in the global batch), so the mask of an
    example does not depend on how the batch is split over devices or micro-batches.

    Args:
      input_ids: int [batch, length].
      token_mask: bool [batch, length], true on real tokens.
      rng: PRNG key.
      example_index: int [batch], each row's index in the global batch (default 0..batch-1).

    Returns:
      dict with `input_ids` (corrupted), `selected` (bool [batch, length]), and, for the
      gathered head, `positions`/`targets`/`weights` [batch, max_predictions].
    """
    if example_index is None:
      example_index = jnp.arange(input_ids.shape[0])
    row_keys = jax.vmap(jax.random.fold_in, (None, 0))(rng, example_index)
    k_select, k_action, k_random = (jax.vmap(lambda k, i=i: jax.random.split(k, 3)[i])(row_keys) for i in range(3))
    length = input_ids.shape[1]
    uniform = jax.vmap(lambda k: jax.random.uniform(k, (length,)))
    special = jnp.isin(input_ids, jnp.asarray(self.special_ids, jnp.int32))
    candidates = token_mask & ~special
    u = uniform(k_select)
    selected = candidates & (u < self.mask_prob)
    out = {}
    if self.head_positions == "masked":
      k = self.max_predictions(input_ids.shape[1])
      score = jnp.where(selected, u, 2.0)
      neg_values, positions = jax.lax.top_k(-score, k)
      selected = selected & (score <= -neg_values[:, -1:])  # drop overflow beyond k (rare)
      out["positions"] = positions
      out["targets"] = jnp.take_along_axis(input_ids, positions, axis=1)
      out["weights"] = jnp.take_along_axis(selected, positions, axis=1)
    action = uniform(k_action)
    vocab = self.random_vocab_size or self.model_config.vocab_size
    random_tokens = jax.vmap(lambda k: jax.random.randint(k, (length,), 0, vocab, dtype=input_ids.dtype))(k_random)
    corrupted = jnp.where(
      action < self.mask_token_prob,
      self.mask_id,
      jnp.where(action < self.mask_token_prob + self.random_token_prob, random_tokens, input_ids),
    )
    out["input_ids"] = jnp.where(selected, corrupted, input_ids)
    out["selected"] = selected
    return out

  def loss(self, params, batch, rng, *, deterministic):
    mask_rng, dropout_rng = self.split_rng(rng, batch)
    token_mask = batch["segment_ids"] != 0 if "segment_ids" in batch else batch["attention_mask"].astype(bool)
    m = self.mask(batch["input_ids"], token_mask, mask_rng, batch.get("example_index"))
    inputs = dict(model_inputs(batch), input_ids=m["input_ids"])
    if self.head_positions == "masked":
      logits = self.model.apply(
        {"params": params}, inputs, deterministic=deterministic, positions=m["positions"], rngs={"dropout": dropout_rng}
      )
      targets, weights = m["targets"], m["weights"]
    else:
      logits = self.model.apply({"params": params}, inputs, deterministic=deterministic, rngs={"dropout": dropout_rng})
      targets, weights = batch["input_ids"], m["selected"]
    loss_sum, weight, correct = cross_entropy_sums(logits, targets, weights)
    return loss_sum, {"loss_sum": loss_sum, "weight": weight, "correct": correct}

  def metrics(self, aux):
    weight = jnp.maximum(aux["weight"], 1.0)
    return {"loss": aux["loss_sum"] / weight, "accuracy": aux["correct"] / weight}
