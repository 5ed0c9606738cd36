"""Small configs shared by the fine-tuning tests: a 1-layer encoder that compiles in seconds."""

from jaxpretrain import config as config_lib

MODEL = {
  "model.hidden_size": 32,
  "model.num_hidden_layers": 1,
  "model.num_attention_heads": 2,
  "model.intermediate_size": 64,
  "model.vocab_size": 512,
  "model.max_position_embeddings": 64,
  "model.hidden_dropout_prob": 0.0,
  "model.attention_probs_dropout_prob": 0.0,
}


def tiny_config(**overrides):
  """Defaults + a tiny encoder, short runs, no progress bar; `a__b=v` overrides `a.b`."""
  config = config_lib.defaults()
  settings = dict(MODEL)
  settings.update(
    {
      "data.seq_len": 32,
      "data.embedded_documents": 200,
      "train.steps": 4,
      "train.batch_size": 8,
      "train.warmup_steps": 1,
      "train.log_every": 2,
      "train.progress": False,
      "eval.batches": 1,
      "checkpoint.every_steps": 2,
      "checkpoint.async_save": False,
    }
  )
  settings.update({k.replace("__", "."): v for k, v in overrides.items()})
  config_lib.apply_overrides(config, list(settings.items()))
  return config


def finetune_config(**overrides):
  """A classification fine-tune on the embedded labeled reviews (32 train, 16 eval examples)."""
  settings = {
    "task__name": "classification",
    "data__train": "embedded",
    "data__train_examples": 32,
    "data__eval_examples": 16,
    "train__learning_rate": 1e-3,
  }
  settings.update(overrides)
  return tiny_config(**settings)
