"""A ~125M-parameter Llama-style decoder for GPU benchmarks (GPT-2 small's size, Llama's arrangement).

12 layers, 768 wide, 12 query heads sharing 4 key/value heads (grouped-query attention), SwiGLU
feed-forward 2048 wide, RMSNorm (eps 1e-5), rotary positions (base 10000), no biases, untied
output embeddings, 32000-token vocabulary, 2048 positions; bf16 compute, cuDNN attention where it
runs. About 125M parameters (75M in the blocks, 49M in the two embedding matrices).

  jaxpretrain bench --config=configs/llama_125m.py --steps=20
  jaxpretrain pretrain --config=configs/llama_125m.py --workdir=runs/llama-125m
"""

from jaxpretrain import config as config_lib
from jaxpretrain.models import families


def get_config():
  c = config_lib.load("gpt2_small")  # the recipe and data of GPT-2 small
  families.apply(c.model, "llama")
  c.model.preset = "llama-125m"
  c.model.num_hidden_layers = 12
  c.model.hidden_size = 768
  c.model.num_attention_heads = 12
  c.model.num_key_value_heads = 4
  c.model.intermediate_size = 2048
  c.model.hidden_act = "silu"
  c.model.layer_norm_eps = 1e-5
  c.model.rope_theta = 10000.0
  c.model.tie_word_embeddings = False
  c.model.vocab_size = 32000
  c.model.max_position_embeddings = 2048
  c.model.hidden_dropout_prob = 0.0
  c.model.attention_probs_dropout_prob = 0.0
  c.model.dtype = "bfloat16"
  c.model.attention = "auto"
  c.data.seq_len = 1024
  c.data.tokenizer_type = "bpe"
  return c
