"""The optax chain: global-norm clipping → AdamW with warmup + linear/cosine decay.

Weight decay skips biases and LayerNorm parameters, as in BERT.
"""

from __future__ import annotations

import math

import jax
import optax

from jaxpretrain.errors import UserError


def warmup_steps(train_config, total_steps: int) -> int:
  """The run's warmup length: `ceil(train.warmup_ratio × total_steps)` when the ratio is set (as in
  HF TrainingArguments), else `train.warmup_steps`; never more than the run's steps."""
  if train_config.warmup_ratio > 0:
    return min(math.ceil(train_config.warmup_ratio * total_steps), total_steps)
  return min(train_config.warmup_steps, total_steps)


def make_schedule(train_config, total_steps: int):
  """Linear warmup (`warmup_steps`) to `learning_rate`, then linear/cosine decay to 0 (or constant).

  Args:
    train_config: the `config.train` section.
    total_steps: optimizer steps in the run.

  Returns:
    An optax schedule (step -> learning rate).
  """
  lr, warmup = train_config.learning_rate, warmup_steps(train_config, total_steps)
  decay_steps = max(total_steps - warmup, 1)
  kind = train_config.schedule
  if kind == "linear":
    decay = optax.linear_schedule(lr, 0.0, decay_steps)
  elif kind == "cosine":
    decay = optax.cosine_decay_schedule(lr, decay_steps)
  elif kind == "constant":
    decay = optax.constant_schedule(lr)
  else:
    raise UserError(f"train.schedule={kind!r}; choose linear, cosine or constant")
  if warmup == 0:
    return decay
  return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), decay], [warmup])


def decay_mask(params):
  """True for parameters that get weight decay: not biases, not LayerNorm scales/biases."""

  def wants_decay(path, _):
    names = [getattr(k, "key", str(k)) for k in path]
    return names[-1] not in ("bias", "scale") and not any("norm" in n for n in names)

  return jax.tree_util.tree_map_with_path(wants_decay, params)


def make_optimizer(train_config, total_steps: int):
  """Builds the optimizer.

  Args:
    train_config: the `config.train` section.
    total_steps: optimizer steps in the run (for the decay).

  Returns:
    (optax.GradientTransformation, schedule).
  """
  schedule = make_schedule(train_config, total_steps)
  parts = []
  if train_config.max_grad_norm > 0:
    parts.append(optax.clip_by_global_norm(train_config.max_grad_norm))
  parts.append(
    optax.adamw(
      schedule,
      b1=train_config.adam_b1,
      b2=train_config.adam_b2,
      eps=train_config.adam_eps,
      weight_decay=train_config.weight_decay,
      mask=decay_mask,
    )
  )
  return optax.chain(*parts), schedule
