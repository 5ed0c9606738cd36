"""Sequence classification from a Hugging Face BERT, with HF Trainer's usual settings.

The JAX equivalent of

  model = BertForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=N)
  Trainer(model, TrainingArguments(num_train_epochs=3, per_device_train_batch_size=16,
          learning_rate=2e-5, warmup_ratio=0.1, weight_decay=0.01), ...).train()

  jaxpretrain finetune --config=configs/finetune_from_hf.py --workdir=runs/bert-cls \
      --config.init_from=hf:/path/to/bert-dir          # or hf:bert-base-uncased with network
  jaxpretrain export --workdir=runs/bert-cls --out=runs/bert-cls-hf   # → BertForSequenceClassification

Model dimensions, activation, LayerNorm eps and the tokenizer come from the HF directory;
`--config.init_weights=false` trains the same architecture from random weights (the baseline).
Data: the embedded labeled reviews by default; any `.jsonl`/`.csv` or `tfds:glue/sst2` via
`--config.data.train=...`. See docs/hf.md.
"""

from jaxpretrain import config as config_lib


def get_config():
  c = config_lib.defaults()
  c.init_from = "hf:bert-base-uncased"  # a local HF directory (offline) or a Hub id
  c.task.name = "classification"
  c.task.pooling = "cls"  # BertForSequenceClassification: the [CLS] pooler
  c.task.classifier_dropout = 0.1  # = hidden_dropout_prob, as HF uses when classifier_dropout is None
  c.data.train = "embedded"
  c.data.seq_len = 128
  c.train.num_epochs = 3.0  # TrainingArguments(num_train_epochs=3)
  c.train.batch_size = 16  # per_device_train_batch_size=16 on one device
  c.train.learning_rate = 2e-5
  c.train.warmup_ratio = 0.1  # as HF run_glue: 19 of the 3 x 63 steps of 1000 embedded examples
  c.train.schedule = "linear"  # HF's default linear decay to 0
  c.train.weight_decay = 0.01  # not on biases and LayerNorm, as Trainer
  c.train.adam_eps = 1e-8  # HF AdamW default
  c.train.max_grad_norm = 1.0
  c.train.log_every = 10
  c.eval.metric = "accuracy"
  c.eval.metric_mode = "max"
  c.checkpoint.every_steps = 0  # Trainer saves at the end here too (save_strategy per run)
  c.checkpoint.keep = 1
  return c
