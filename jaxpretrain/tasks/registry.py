"""`task.name` → a Task object and the data it trains on."""
from __future__ import annotations

from jaxpretrain.errors import UserError

PRETRAINING = ("mlm", "causal_lm")


def build_data(config, workdir: str):
  """The `RunData` for the configured task."""
  name = config.task.name
  if name in PRETRAINING:
    from jaxpretrain.data.pipeline import build_pretraining
    return build_pretraining(config, workdir)
  if name in ("classification", "token_classification", "qa"):
    from jaxpretrain.data.labeled import build_labeled
    return build_labeled(config, workdir)
  if name == "translation":
    from jaxpretrain.data.translation import build_translation
    return build_translation(config, workdir)
  raise UserError(f"task.name={name!r}; choose one of mlm, causal_lm, classification, "
                  f"token_classification, qa, translation")


def build_task(config, model_config, data):
  """The Task object for `config.task.name`, wired to the data's tokenizer and labels."""
  name = config.task.name
  special = data.info.get("special_ids", {})
  if name == "mlm":
    from jaxpretrain.tasks.mlm import MaskedLM
    if special.get("mask") is None:
      raise UserError("task.name=mlm needs a tokenizer with a [MASK] token")
    return MaskedLM(model_config, special_ids=tuple(sorted(v for v in data.tokenizer.all_special_ids)),
                    mask_id=special["mask"], random_vocab_size=data.tokenizer.vocab_size,
                    mask_prob=config.task.mask_prob, mask_token_prob=config.task.mask_token_prob,
                    random_token_prob=config.task.random_token_prob, head_positions=config.task.head_positions,
                    max_predictions_per_seq=config.task.max_predictions)
  if name in ("causal_lm", "translation") and not model_config.causal:
    # A bidirectional model sees the token it is to predict: the loss would be meaningless.
    raise UserError(f"task.name={name} needs a decoder: set model.causal=true")
  if name == "causal_lm":
    from jaxpretrain.tasks.causal_lm import CausalLM
    return CausalLM(model_config)
  if name == "translation":
    from jaxpretrain.tasks.translation import Translation
    return Translation(model_config)
  from jaxpretrain.tasks.finetune import build_finetune_task
  return build_finetune_task(config, model_config, data)
