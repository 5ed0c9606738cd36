"""BERT-base (110M) MLM pretraining with the published recipe (Devlin et al. 2019), phase 1 (seq 128).

12 layers, 768 wide, 12 heads, 3072 feed-forward, 512 positions, the 30522-token uncased WordPiece
vocabulary; batch 256 × 128 tokens, 1M steps, Adam lr 1e-4 (β 0.9/0.999, ε 1e-6), 10k warmup steps
then linear decay, weight decay 0.01, dropout 0.1. The paper trained 90% of the steps at seq 128 and
the last 10% at seq 512; run that second phase as a new workdir with `init_from` (docs/bert_base.md).

  jaxpretrain prepare  --config=configs/bert_base.py --workdir=runs/bert-base   # or a SLURM array
  jaxpretrain pretrain --config=configs/bert_base.py --workdir=runs/bert-base

Data: English Wikipedia through tfds (array_record format); add book-like text by preparing a
directory of `.jsonl` files instead (`--config.data.train=/data/books_and_wiki/`).
"""

from jaxpretrain import config as config_lib
from jaxpretrain.models import presets


def get_config():
  c = config_lib.defaults()
  presets.apply(c.model, "base")
  c.model.vocab_size = presets.BERT_VOCAB
  c.model.dtype = "bfloat16"  # compute dtype on GPUs/TPUs; parameters stay float32
  c.model.attention = "auto"  # cuDNN flash attention where it runs, XLA elsewhere
  c.data.train = "tfds:wikipedia/20230601.en"
  c.data.tokenizer = ""  # e.g. a bert-base-uncased tokenizer dir; "" = train WordPiece
  c.data.seq_len = 128
  c.data.eval_fraction = 0.0005  # ~3k Wikipedia articles held out
  c.data.records_per_shard = 100000
  c.task.name = "mlm"
  c.train.steps = 1_000_000
  c.train.batch_size = 256
  c.train.learning_rate = 1e-4
  c.train.warmup_steps = 10_000
  c.train.schedule = "linear"
  c.train.weight_decay = 0.01
  c.train.adam_b1 = 0.9
  c.train.adam_b2 = 0.999
  c.train.adam_eps = 1e-6
  c.train.log_every = 100
  c.eval.every_steps = 10_000
  c.eval.batches = 50
  c.checkpoint.every_steps = 10_000
  c.checkpoint.keep = 3
  return c
