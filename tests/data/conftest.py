"""Shared fixtures: a small embedded corpus prepared once per session."""

import pytest

from jaxpretrain.data.pretrain import prepare
from jaxpretrain.data.readers import embedded

SEQ_LEN = 32
NUM_DOCS = 240


@pytest.fixture(scope="session")
def prepared_dir(tmp_path_factory):
  """A prepared embedded corpus: several train files (records_per_shard=40) and an eval split."""
  out = str(tmp_path_factory.mktemp("prepared"))
  prepare.prepare(
    "embedded",
    out,
    seq_len=SEQ_LEN,
    vocab_size=600,
    eval_fraction=0.1,
    embedded_documents=NUM_DOCS,
    records_per_shard=40,
    seed=3,
  )
  return out


@pytest.fixture(scope="session")
def corpus():
  """The documents `prepared_dir` was made from, in order."""
  return list(embedded.documents(NUM_DOCS, seed=3))
