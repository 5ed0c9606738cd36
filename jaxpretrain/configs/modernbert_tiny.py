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
from jaxpretrain.configs import tiny
from jaxpretrain.models import families


def get_config():
  c = tiny.get_config()  # the tiny BERT's corpus, tokenizer, MLM objective and schedule
  c.model = config_lib.defaults().model
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
  c.task.mask_prob = 0.3  # ModernBERT's masking rate
  c.task.pooling = "cls"  # HF classifier_pooling
  c.task.classifier_dropout = 0.0
  c.train.learning_rate = 2e-3
  return c
