"""Session fixtures: a gpt-packed embedded corpus and a tiny GPT pretrained on it."""

import pytest

from jaxpretrain.data.pretrain import prepare
from jaxpretrain.train import loop
from tests.decoder.helpers import tiny_gpt_config


@pytest.fixture(scope="session")
def gpt_prepared(tmp_path_factory):
  """400 embedded documents packed as [BOS] doc [EOS] rows of 32 tokens (vocabulary 512)."""
  out = str(tmp_path_factory.mktemp("gpt_prepared") / "data")
  prepare.prepare(
    "embedded",
    out,
    seq_len=32,
    vocab_size=512,
    eval_fraction=0.05,
    embedded_documents=400,
    records_per_shard=200,
    packing="gpt",
  )
  return out


@pytest.fixture(scope="session")
def gpt_run(tmp_path_factory, gpt_prepared):
  """(workdir, summary) of a 40-step causal-LM run of a 1-layer, 32-wide GPT (checkpoints at 20, 40)."""
  workdir = str(tmp_path_factory.mktemp("gpt_run"))
  config = tiny_gpt_config(
    gpt_prepared,
    **{"train.steps": 40, "train.log_every": 5, "checkpoint.every_steps": 20, "checkpoint.async_save": False},
  )
  return workdir, loop.run(config, workdir)
