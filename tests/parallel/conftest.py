"""Session fixtures: the same training steps under every strategy (see runs.py)."""

import pytest

from jaxpretrain.models.config import ModelConfig
from jaxpretrain.tasks.classification import SequenceClassification
from jaxpretrain.tasks.mlm import MaskedLM
from tests.parallel import runs


@pytest.fixture(scope="session")
def pretrain_runs():
  """MLM on configs/tiny.py (float32): 5 steps of batch 32 x 128 tokens under each strategy."""
  config = runs.tiny_config()
  task = MaskedLM(ModelConfig.from_config(config.model))
  batches = runs.mlm_batches(5, config.train.batch_size, config.data.seq_len, config.model.vocab_size)
  return {
    name: runs.run(task, mesh, devices, batches, config.data.seq_len, config)
    for name, (mesh, devices) in runs.STRATEGIES.items()
  }


@pytest.fixture(scope="session")
def finetune_runs():
  """Sequence classification (3 labels, padded rows weighted 0) under each strategy."""
  config = runs.tiny_config()
  task = SequenceClassification(runs.small_model(config), num_labels=3, dropout=0.0)
  batches = runs.classification_batches(5, 32, 64, 512, 3)
  return {name: runs.run(task, mesh, devices, batches, 64, config) for name, (mesh, devices) in runs.STRATEGIES.items()}
