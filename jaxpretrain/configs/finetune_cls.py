"""A base-size sequence-classification recipe for real data (BERT paper / HF run_glue defaults).

  jaxpretrain finetune --config=configs/finetune_cls.py --workdir=runs/imdb \
      --config.init_from=runs/bert-base          # or hf:bert-base-uncased
  jaxpretrain evaluate --workdir=runs/imdb

`data.train` takes a .jsonl/.csv file (`text` or `text_a`+`text_b`, and `label`) or a tfds name;
`data.eval` defaults to the dataset's validation/test split (for files: set it). The model's
architecture (BERT-base here) is replaced by that of the `init_from` run or HF checkpoint, and
`data.seq_len` is capped at its positions; a `--config.model.*` override that contradicts the
source is an error.
"""

from jaxpretrain import config as config_lib
from jaxpretrain.models import presets


def get_config():
  c = config_lib.defaults()
  presets.apply(c.model, "base")
  c.model.vocab_size = presets.BERT_VOCAB
  c.task.name = "classification"
  c.task.pooling = "cls"  # BERT's [CLS] pooler
  c.task.classifier_dropout = 0.1
  c.data.train = "tfds:imdb_reviews"
  c.data.seq_len = 256
  c.train.num_epochs = 3.0  # HF TrainingArguments-style: epochs rather than steps
  c.train.batch_size = 32
  c.train.learning_rate = 2e-5
  c.train.warmup_ratio = 0.1  # 10% of the run, however long the data makes it (HF run_glue's habit)
  c.train.weight_decay = 0.01
  c.train.log_every = 50
  c.eval.every_steps = 500
  c.eval.metric = "accuracy"  # keep the best checkpoint by eval accuracy
  c.eval.metric_mode = "max"
  c.checkpoint.every_steps = 500
  c.checkpoint.keep = 2
  return c
