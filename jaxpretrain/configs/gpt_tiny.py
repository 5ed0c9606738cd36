"""A tiny GPT on the embedded corpus: 30 causal-LM steps in under a minute on 2 CPU cores.

The same `Encoder` as BERT with `causal=True`, pre-LN blocks and a final LayerNorm (GPT-2's
arrangement), no pooler or token types, and the output projection tied to the token embeddings.
A byte-level BPE is trained on the corpus (`data.tokenizer_type` = auto → bpe, as GPT-2's), and rows
are packed `<|endoftext|> doc <|endoftext|>` with a segment-aware causal mask (`data.packing` = auto → gpt).

  jaxpretrain pretrain --config=configs/gpt_tiny.py --workdir=runs/gpt-tiny
  jaxpretrain generate --workdir=runs/gpt-tiny --prompt="the soup was" --temperature=0
"""

from jaxpretrain import config as config_lib
from jaxpretrain.models import presets


def get_config():
  c = config_lib.defaults()
  presets.apply(c.model, "tiny")
  c.model.preset = "tiny (GPT arrangement)"
  c.model.pre_layer_norm = True  # GPT-2: LayerNorm before attention / MLP, one after the stack
  c.model.causal = True
  c.model.use_pooler = False
  c.model.type_vocab_size = 0
  c.model.hidden_act = "gelu_new"
  c.model.layer_norm_eps = 1e-5
  c.model.vocab_size = 4096  # at most: the byte-level BPE trained on the embedded corpus
  c.model.max_position_embeddings = 128
  c.model.hidden_dropout_prob = 0.0  # 30 steps: dropout only slows the visible loss drop
  c.model.attention_probs_dropout_prob = 0.0
  c.task.name = "causal_lm"
  c.data.seq_len = 128
  c.data.embedded_documents = 10000  # ~1.3M tokens: 10x what 30 steps read
  c.train.steps = 30
  c.train.batch_size = 32
  c.train.learning_rate = 2e-3
  c.train.warmup_steps = 5
  c.train.log_every = 5
  c.eval.every_steps = 15
  c.eval.batches = 4
  c.checkpoint.every_steps = 15
  return c
