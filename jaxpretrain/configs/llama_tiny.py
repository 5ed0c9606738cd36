"""A tiny Llama on the embedded corpus: 30 causal-LM steps in under a minute on 2 CPU cores.

Llama's arrangement (`model.family=llama`, see `jaxpretrain/models/families.py`): pre-RMSNorm
blocks without biases, rotary positions, a SwiGLU MLP, grouped-query attention (4 query heads
sharing 2 key/value heads) and an untied output projection. A byte-level BPE is trained on the
corpus (`data.tokenizer_type` = auto → bpe) and rows are packed `<|endoftext|> doc <|endoftext|>`
with a segment-aware causal mask; rotary positions restart in every packed document.

  jaxpretrain pretrain --config=configs/llama_tiny.py --workdir=runs/llama-tiny
  jaxpretrain generate --workdir=runs/llama-tiny --prompt="the soup was" --temperature=0
"""

from jaxpretrain import config as config_lib
from jaxpretrain.configs import gpt_tiny
from jaxpretrain.models import families


def get_config():
  c = gpt_tiny.get_config()  # the tiny GPT's corpus, tokenizer, causal-LM objective and schedule
  c.model = config_lib.defaults().model
  families.apply(c.model, "llama")
  c.model.preset = "llama tiny"
  c.model.num_hidden_layers = 2
  c.model.hidden_size = 128
  c.model.num_attention_heads = 4
  c.model.num_key_value_heads = 2
  c.model.intermediate_size = 352  # SwiGLU: ~8/3 x hidden
  c.model.hidden_act = "silu"
  c.model.layer_norm_eps = 1e-5  # HF rms_norm_eps
  c.model.rope_theta = 10000.0
  c.model.tie_word_embeddings = False
  c.model.vocab_size = 4096  # at most: the byte-level BPE trained on the embedded corpus
  c.model.max_position_embeddings = 128
  c.model.hidden_dropout_prob = 0.0
  c.model.attention_probs_dropout_prob = 0.0
  return c
