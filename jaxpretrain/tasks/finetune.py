"""`build_finetune_task`: the Task object of a fine-tuning run, sized by its data's labels."""
from __future__ import annotations

from jaxpretrain.errors import UserError
from jaxpretrain.models.config import ModelConfig


def build_finetune_task(config, model_config: ModelConfig, data):
  """The classification, token-classification or QA task for `config.task`.

  Args:
    config: the run config (`task.*` keys).
    model_config: the encoder's `ModelConfig`.
    data: the run's `RunData` (`info["label_names"]` from `data/labeled.py`).

  Returns:
    A `Task`.
  """
  name, t = config.task.name, config.task
  names = tuple(data.info.get("label_names", ()))
  if name == "classification":
    from jaxpretrain.tasks.classification import SequenceClassification
    if t.pooling not in ("cls", "mean"):
      raise UserError(f"task.pooling={t.pooling!r}; choose cls or mean")
    return SequenceClassification(model_config, num_labels=len(names), pooling=t.pooling,
                                  dropout=t.classifier_dropout)
  if name == "token_classification":
    from jaxpretrain.tasks.token_classification import TokenClassification
    return TokenClassification(model_config, label_names=names, dropout=t.classifier_dropout)
  if name == "qa":
    from jaxpretrain.tasks.qa import QuestionAnswering
    return QuestionAnswering(model_config, max_answer_length=t.max_answer_length, n_best=t.n_best)
  raise UserError(f"task.name={name!r}; choose one of mlm, causal_lm, classification, token_classification, qa")
