"""BERT-base MLM at seq 128, batch 256, bf16 compute: the issue's first GPU throughput row."""

from jaxpretrain import config as config_lib
from jaxpretrain.models import presets


def get_config():
  c = config_lib.defaults()
  presets.apply(c.model, "base")
  c.model.vocab_size = presets.BERT_VOCAB
  c.model.dtype = "bfloat16"
  c.model.attention = "auto"  # cuDNN flash attention where it runs, XLA elsewhere
  c.data.seq_len = 128
  c.train.batch_size = 256
  c.train.progress = False
  return c
