"""The `Task` interface that makes `train_step` generic over objectives.

A task's `loss` returns the *sum* of per-example (or per-token) losses and, in `aux`, the weight
that sum is to be divided by (`aux["weight"]`: masked tokens, target tokens, examples). The
train step divides only after summing over gradient-accumulation micro-batches and devices, so
the loss is exactly the same however a global batch is split.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxpretrain.models.config import ModelConfig
from jaxpretrain.models.model import Model


@dataclasses.dataclass(frozen=True)
class Task:
  """Base class: subclasses set `name` and implement `head`, `loss`, `metrics`, `dummy_batch`.

  Tasks are frozen dataclasses (hashable) because they ride in `TrainState` as static data.
  """

  model_config: ModelConfig

  name = "task"

  def head(self) -> nn.Module:
    """The (unbound) head module; the model is `Model(model_config, head)`."""
    raise NotImplementedError

  @property
  def model(self) -> Model:
    return Model(self.model_config, self.head())

  def dummy_batch(self, batch_size: int, seq_len: int) -> dict:
    """A batch of the right structure (shapes, dtypes) for initialization and eval_shape."""
    raise NotImplementedError

  def init(self, rng, seq_len: int):
    """Initializes parameters (boxed with logical axis metadata)."""
    batch = self.dummy_batch(1, seq_len)
    return self.model.init({"params": rng, "dropout": rng}, model_inputs(batch), deterministic=True)["params"]

  def logits(self, params, batch: dict, rng=None, *, deterministic: bool = True):
    """The head's output (logits, float32) for a batch; `rng` is the dropout key."""
    rngs = {} if rng is None else {"dropout": rng}
    return self.model.apply({"params": params}, model_inputs(batch), deterministic=deterministic, rngs=rngs)

  def split_rng(self, rng, batch: dict):
    """(task key, dropout key). The dropout key also folds in the batch's first global example
    index, so micro-batches and devices draw different dropout masks from one step key."""
    task_rng, dropout_rng = jax.random.split(rng)
    if "example_index" in batch:
      dropout_rng = jax.random.fold_in(dropout_rng, batch["example_index"][0])
    return task_rng, dropout_rng

  def loss(self, params, batch: dict, rng, *, deterministic: bool) -> tuple[jax.Array, dict]:
    """Returns (sum of losses, aux) where aux holds `weight` and the metric sums."""
    raise NotImplementedError

  def metrics(self, aux: dict) -> dict:
    """Final metrics from aux sums (summed over micro-batches, devices, eval batches)."""
    weight = jnp.maximum(aux["weight"], 1.0)
    return {"loss": aux["loss_sum"] / weight}


def model_inputs(batch: dict) -> dict:
  """The encoder's inputs from a batch (labels and other targets left out)."""
  keys = ("input_ids", "attention_mask", "token_type_ids", "segment_ids", "positions")
  return {k: batch[k] for k in keys if k in batch}


def cross_entropy_sums(logits, labels, weights) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Weighted cross-entropy: (loss sum, weight sum, correct-prediction sum), all float32.

  Args:
    logits: float [..., classes].
    labels: int [...].
    weights: float/bool [...]; 0 excludes a position.
  """
  weights = weights.astype(jnp.float32)
  losses = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)
  correct = argmax_equals(logits, labels).astype(jnp.float32)
  return jnp.sum(losses * weights), jnp.sum(weights), jnp.sum(correct * weights)


def argmax_equals(logits, labels):
  """`jnp.argmax(logits, -1) == labels` (the first maximum on ties), from plain max/any reductions.

  XLA's CPU backend runs argmax as a scalar (value, index) reduction: on the demo's MLM logits
  ([1600, 4096]) it took about 5 times as long as these float max reductions
  (`benchmarks/demo_profile.py --part=argmax`). A label matches when its logit is the maximum and
  no earlier class reaches it.

  Args:
    logits: float [..., classes].
    labels: int [...] (values outside [0, classes) never match).

  Returns:
    bool [...].
  """
  top = jnp.max(logits, axis=-1)
  inside = (labels >= 0) & (labels < logits.shape[-1])
  at_label = jnp.take_along_axis(logits, jnp.clip(labels, 0, logits.shape[-1] - 1)[..., None], axis=-1)[..., 0]
  classes = jnp.arange(logits.shape[-1], dtype=labels.dtype)
  before = jnp.max(jnp.where(classes < labels[..., None], logits, -jnp.inf), axis=-1)  # -inf for label 0
  return inside & (at_label >= top) & (before < top)
