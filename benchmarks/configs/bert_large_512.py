"""BERT-large MLM at seq 512, batch 32, bf16 compute."""

from jaxpretrain import config as config_lib
from jaxpretrain.models import presets


def get_config():
  c = config_lib.defaults()
  presets.apply(c.model, "large")
  c.model.vocab_size = presets.BERT_VOCAB
  c.model.dtype = "bfloat16"
  c.model.attention = "auto"
  c.data.seq_len = 512
  c.train.batch_size = 32
  c.train.progress = False
  return c
