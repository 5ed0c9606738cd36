"""A tiny ModernBERT on the embedded corpus: 30 MLM steps in about a minute on 2 CPU cores.

ModernBERT's arrangement (`model.family=modernbert`, see `jaxpretrain/models/families.py`): pre-LN
blocks with bias-free LayerNorms and linears, a normalized embedding (so layer 0 has no attention
norm), rotary positions, a GeGLU MLP, and sliding-window attention on every layer but each third
(layers 0, 3, ...: global, rotary base 160000; the others: a window of 32 tokens each side, base
10000). MLM masks 30% of the tokens, as published. A WordPiece tokenizer is trained on the corpus.

  jaxpretrain pretrain --config=configs/modernbert_tiny.py --workdir=runs/modernbert-tiny
  jaxpretrain finetune --config=configs/finetune_tiny.py --workdir=runs/mb-cls \
      --config.init_from=runs/modernbert-tiny
"""

from jaxpretrain import config as config_lib
from jaxpretrain.models import families


def get_config():
  c = config_lib.defaults()
  families.apply(c.model, "modernbert")
  c.model.preset = "modernbert tiny"
  c.model.num_hidden_layers = 3
  c.model.hidden_size = 128
  c.model.num_attention_heads = 2
  c.model.intermediate_size = 192  # GeGLU: gate and linear branch each this wide
  c.model.hidden_act = "gelu"
  c.model.layer_norm_eps = 1e-5
  c.model.rope_theta = 160000.0
  c.model.local_rope_theta = 10000.0
  c.model.sliding_window = 32  # HF local_attention = 64
  c.model.global_attn_every_n_layers = 3
  c.model.vocab_size = 4096  # the WordPiece vocabulary trained on the embedded corpus
  c.model.max_position_embeddings = 128
  c.model.hidden_dropout_prob = 0.0
  c.model.attention_probs_dropout_prob = 0.0
  c.task.name = "mlm"
  c.task.mask_prob = 0.3  # ModernBERT's masking rate
  c.task.pooling = "cls"  # HF classifier_pooling
  c.task.classifier_dropout = 0.0
  c.data.seq_len = 128
  c.data.embedded_documents = 20000
  c.train.steps = 30
  c.train.batch_size = 32
  c.train.learning_rate = 2e-3
  c.train.warmup_steps = 5
  c.train.log_every = 5
  c.eval.every_steps = 15
  c.eval.batches = 4
  c.checkpoint.every_steps = 15
  return c
