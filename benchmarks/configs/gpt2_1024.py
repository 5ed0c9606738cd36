"""GPT-2 small (124M) causal LM at seq 1024, batch 32, bf16 compute (needs the causal_lm task)."""

from jaxpretrain import config as config_lib
from jaxpretrain.models import presets


def get_config():
  c = config_lib.defaults()
  presets.apply(c.model, "gpt2-small")
  c.model.dtype = "bfloat16"
  c.model.attention = "auto"
  c.task.name = "causal_lm"
  c.data.seq_len = 1024
  c.train.batch_size = 32
  c.train.progress = False
  return c
