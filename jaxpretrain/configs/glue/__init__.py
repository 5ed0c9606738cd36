"""The GLUE fine-tuning recipe: `glue_config(task)` builds `configs/glue/<task>.py` from the suite table.

BERT paper (Devlin et al., 2019, §4.1) hyper-parameters: batch 32, learning rate 2e-5, 3 epochs,
128 tokens, linear warmup over 10% of the run then linear decay, weight decay 0.01, dropout 0.1.
The data, columns, head size and the metric that picks the best checkpoint come from
`tasks/suites.py` `SUITES["glue"]`; evaluation and checkpoints happen once per epoch (of the
table's training-set size at batch 32), keeping the latest and the best.

  jaxpretrain finetune --config=glue/mrpc --workdir=runs/mrpc --config.init_from=runs/bert
  jaxpretrain suite --suite=glue --init_from=runs/bert --workdir=runs/glue   # all nine (docs/suite.md)

The model's architecture (BERT-base here) is that of the `init_from` run or HF checkpoint.
"""

import math

from jaxpretrain import config as config_lib
from jaxpretrain.models import presets
from jaxpretrain.tasks import suites


def glue_config(name: str):
  """The fine-tuning config of GLUE task `name`.

  Args:
    name: a key of `SUITES["glue"]` (cola, sst2, mrpc, qqp, stsb, mnli, qnli, rte, wnli).

  Returns:
    The config (`init_from` still empty: the run names its source).
  """
  t = suites.SUITES["glue"][name]
  c = config_lib.defaults()
  presets.apply(c.model, "base")
  c.model.vocab_size = presets.BERT_VOCAB
  c.model.hidden_dropout_prob = c.model.attention_probs_dropout_prob = 0.1
  c.task.name = t.task
  c.task.num_labels = t.num_labels if t.num_labels > 1 else 0  # a regression head has no label vocabulary
  c.task.pooling = "cls"  # BERT's [CLS] pooler, as *ForSequenceClassification
  c.task.classifier_dropout = 0.1
  c.data.train = t.source("train")
  c.data.eval = t.source(next(iter(t.eval_splits.values())))  # MNLI: evaluated on matched during training
  c.data.text_column, c.data.text_pair_column, c.data.label_column = t.text_column, t.text_pair_column, "label"
  c.data.seq_len = 128
  c.train.num_epochs = 3.0
  c.train.batch_size = 32
  c.train.learning_rate = 2e-5
  c.train.warmup_ratio = 0.1
  c.train.schedule = "linear"
  c.train.weight_decay = 0.01
  c.train.log_every = 50
  epoch = math.ceil(t.train_examples / c.train.batch_size)
  c.eval.every_steps = c.checkpoint.every_steps = epoch
  c.eval.metric, c.eval.metric_mode = t.main, "max"
  c.checkpoint.keep = 1  # plus the best by eval.metric
  return c
