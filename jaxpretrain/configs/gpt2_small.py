"""GPT-2 small (124M): the published dims and a nanoGPT-style recipe for ~10B tokens of real text.

Preset "gpt2-small": 12 layers, 768 wide, 12 heads, 1024 positions, 50257-token vocabulary, pre-LN,
tanh GELU, tied output embeddings; a byte-level BPE tokenizer; packed `<|endoftext|> doc
<|endoftext|>` rows (GPT-2's end-of-text token is BOS, EOS and padding) and a segment-aware causal mask.

  jaxpretrain pretrain --config=configs/gpt2_small.py --workdir=runs/gpt2
  jaxpretrain pretrain --config=configs/gpt2_small.py --workdir=runs/gpt2 \
      --config.data.tokenizer=hf:PATH_TO_GPT2_TOKENIZER_DIR      # GPT-2's own vocabulary instead
  jaxpretrain export --workdir=runs/gpt2 --out=runs/gpt2-hf      # a GPT2LMHeadModel directory

Data: English Wikipedia through tfds (prepared in the array_record format; the wikipedia builder
needs TensorFlow installed to register). Any other corpus works the same way: a local
OpenWebText export (`--config.data.train='owt/*.jsonl'`, one {"text": ...} per line) or
`tfds:lm1b`. The tokenizer: without `data.tokenizer`, prepare trains a 50257-token byte-level BPE
on the corpus (GPT-2's scheme and size: <|endoftext|>, the 256 bytes, 50000 merges); or a GPT-2
tokenizer directory (e.g. `AutoTokenizer.from_pretrained("gpt2").save_pretrained(DIR)` where the
Hub is reachable).
"""

from jaxpretrain import config as config_lib
from jaxpretrain.models import presets


def get_config():
  c = config_lib.defaults()
  presets.apply(c.model, "gpt2-small")
  c.model.hidden_dropout_prob = 0.0  # single-epoch pretraining on a large corpus: no dropout
  c.model.attention_probs_dropout_prob = 0.0
  c.model.dtype = "bfloat16"
  c.model.attention = "auto"  # cuDNN flash attention where it runs
  c.model.vocab_size = 50257  # GPT-2's: <|endoftext|> + 256 bytes + 50000 merges
  c.task.name = "causal_lm"
  c.data.train = "tfds:wikipedia/20230601.en"
  c.data.tokenizer = ""  # "" = train a byte-level BPE; or a GPT-2 tokenizer directory (see above)
  c.data.tokenizer_type = "bpe"
  c.data.seq_len = 1024
  c.data.eval_fraction = 0.0005
  c.data.records_per_shard = 100000
  c.train.batch_size = 512  # 0.5M tokens a step
  c.train.grad_accum_steps = 8  # 64 rows per micro-batch; raise on smaller accelerators
  c.train.steps = 19073  # ~10B tokens
  c.train.learning_rate = 6e-4
  c.train.warmup_steps = 715
  c.train.schedule = "cosine"
  c.train.weight_decay = 0.1
  c.train.adam_b1 = 0.9
  c.train.adam_b2 = 0.95
  c.train.adam_eps = 1e-8
  c.train.max_grad_norm = 1.0
  c.train.log_every = 50
  c.eval.every_steps = 1000
  c.eval.batches = 20
  c.eval.batch_size = 64
  c.checkpoint.every_steps = 1000
  c.checkpoint.keep = 3
  return c
