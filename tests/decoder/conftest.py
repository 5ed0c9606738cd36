"""Session fixtures: a tiny GPT pretrained on the gpt-packed embedded corpus (`gpt_prepared`, tests/conftest.py)."""

import pytest

from jaxpretrain.train import loop
from tests.decoder.helpers import tiny_gpt_config


@pytest.fixture(scope="session")
def gpt_run(tmp_path_factory, gpt_prepared):
  """(workdir, summary) of a 40-step causal-LM run of a 1-layer, 32-wide GPT (checkpoints at 20, 40)."""
  workdir = str(tmp_path_factory.mktemp("gpt_run"))
  config = tiny_gpt_config(
    gpt_prepared,
    **{"train.steps": 40, "train.log_every": 5, "checkpoint.every_steps": 20, "checkpoint.async_save": False},
  )
  return workdir, loop.run(config, workdir)
