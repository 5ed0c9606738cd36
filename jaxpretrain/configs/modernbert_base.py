"""ModernBERT-base (149M) with the published dimensions (Warner et al. 2024; HF `answerdotai/ModernBERT-base`).

22 layers, 768 wide, 12 heads, GeGLU feed-forward 1152 wide (HF `intermediate_size`: each branch),
bias-free linears and LayerNorms (eps 1e-5), rotary positions, global attention every third layer
(layers 0, 3, 6, ...: rotary base 160000) and a 128-token window (64 each side) on the others
(base 10000), 50368-token vocabulary, 8192 positions, tied decoder; MLM with 30% masking. Phase 1
at seq 1024 as published (raise `data.seq_len` for the context-extension phases).

  jaxpretrain pretrain --config=configs/modernbert_base.py --workdir=runs/modernbert-base
  jaxpretrain export --workdir=runs/modernbert-base --out=runs/modernbert-base-hf   # ModernBertForMaskedLM

Data: English Wikipedia through tfds, as configs/bert_base.py. Tokenizer: "" trains a WordPiece of
the model's vocabulary size; ModernBERT's own (a BPE with [MASK]) is `--config.data.tokenizer=DIR`.
"""

from jaxpretrain import config as config_lib
from jaxpretrain.models import families


def get_config():
  c = config_lib.defaults()
  families.apply(c.model, "modernbert")
  c.model.preset = "modernbert-base"
  c.model.num_hidden_layers = 22
  c.model.hidden_size = 768
  c.model.num_attention_heads = 12
  c.model.intermediate_size = 1152
  c.model.hidden_act = "gelu"
  c.model.layer_norm_eps = 1e-5
  c.model.rope_theta = 160000.0
  c.model.local_rope_theta = 10000.0
  c.model.sliding_window = 64  # HF local_attention = 128
  c.model.global_attn_every_n_layers = 3
  c.model.vocab_size = 50368
  c.model.max_position_embeddings = 8192
  c.model.hidden_dropout_prob = 0.0  # ModernBERT: embedding, attention and MLP dropout 0
  c.model.attention_probs_dropout_prob = 0.0
  c.model.dtype = "bfloat16"
  c.model.attention = "auto"  # cuDNN where it takes the mask and window, XLA elsewhere
  c.task.name = "mlm"
  c.task.mask_prob = 0.3
  c.task.pooling = "cls"
  c.task.classifier_dropout = 0.0
  c.data.train = "tfds:wikipedia/20230601.en"
  c.data.tokenizer = ""
  c.data.seq_len = 1024
  c.data.eval_fraction = 0.0005
  c.data.records_per_shard = 100000
  c.train.batch_size = 512
  c.train.grad_accum_steps = 8
  c.train.steps = 100_000
  c.train.learning_rate = 8e-4
  c.train.warmup_steps = 3000
  c.train.schedule = "linear"
  c.train.weight_decay = 1e-5
  c.train.adam_b1 = 0.9
  c.train.adam_b2 = 0.98
  c.train.adam_eps = 1e-6
  c.train.log_every = 100
  c.eval.every_steps = 5000
  c.eval.batches = 20
  c.checkpoint.every_steps = 5000
  c.checkpoint.keep = 3
  return c
