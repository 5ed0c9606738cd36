"""Fine-tune the tiny encoder of `configs/tiny.py` on the embedded sentiment task (~1 min, 2 CPU cores).

  jaxpretrain pretrain --config=configs/tiny.py --workdir=runs/tiny
  jaxpretrain finetune --config=configs/finetune_tiny.py --workdir=runs/tiny-cls --config.init_from=runs/tiny

Without `init_from` the same command trains the same architecture from scratch (the baseline).
"""

from jaxpretrain import config as config_lib
from jaxpretrain.models import presets


def get_config():
  c = config_lib.defaults()
  presets.apply(c.model, "tiny")
  c.model.vocab_size = 4096  # as configs/tiny.py: the encoder's dims must match its checkpoint
  c.model.max_position_embeddings = 128
  c.task.name = "classification"
  c.task.pooling = "cls"
  c.data.train = "embedded"  # the embedded labeled reviews (train split; test split for eval)
  c.data.train_examples = 512  # the label budget
  c.data.eval_examples = 1000
  c.data.seq_len = 64  # a review is <= ~40 words
  c.train.num_epochs = 8.0  # 512 examples / 32 = 16 steps an epoch -> 128 steps
  c.train.batch_size = 32
  c.train.learning_rate = 5e-4
  c.train.warmup_steps = 12
  c.train.weight_decay = 0.01
  c.train.log_every = 8
  c.eval.every_steps = 32
  c.eval.metric = "accuracy"  # keep the best checkpoint by eval accuracy
  c.eval.metric_mode = "max"
  c.checkpoint.every_steps = 32
  c.checkpoint.keep = 2
  return c
