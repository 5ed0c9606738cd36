"""A tiny MLM pretraining run shared by the fine-tuning tests (created once per session)."""

import pytest

from jaxpretrain.train import loop
from tests.finetune.helpers import tiny_config


@pytest.fixture(scope="session")
def pretrained(tmp_path_factory, tiny_prepared):
  """The workdir of a 4-step MLM run (on the session's prepared corpus) with checkpoints at steps 2 and 4."""
  workdir = str(tmp_path_factory.mktemp("pretrained"))
  loop.run(tiny_config(data__prepared_dir=tiny_prepared), workdir)
  return workdir
