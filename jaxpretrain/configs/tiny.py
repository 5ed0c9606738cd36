"""A tiny BERT on the embedded corpus: 30 steps in well under a minute on 2 CPU cores."""

from jaxpretrain import config as config_lib
from jaxpretrain.models import presets


def get_config():
  c = config_lib.defaults()
  presets.apply(c.model, "tiny")
  c.model.vocab_size = 4096  # the WordPiece vocabulary trained on the embedded corpus
  c.model.max_position_embeddings = 128
  c.model.hidden_dropout_prob = 0.0  # 30 steps: dropout only slows the visible loss drop
  c.model.attention_probs_dropout_prob = 0.0
  c.data.seq_len = 128
  c.data.embedded_documents = 20000
  c.train.steps = 30
  c.train.batch_size = 32
  c.train.learning_rate = 1e-3
  c.train.warmup_steps = 5
  c.train.log_every = 5
  c.eval.every_steps = 15
  c.eval.batches = 4
  c.checkpoint.every_steps = 15
  return c
