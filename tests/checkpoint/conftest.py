"""The finished run the checkpoint fault tests damage copies of."""

import shutil

import pytest

from jaxpretrain.train import loop
from tests.run_configs import tiny_pretrain_config


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_prepared):
  """A finished 8-step run with checkpoints at steps 4 and 8 (copied per test before damage)."""
  workdir = str(tmp_path_factory.mktemp("run") / "w")
  loop.run(tiny_pretrain_config(tiny_prepared), workdir)
  return workdir


def copy_run(run: str, tmp_path) -> str:
  """A copy of `run` at TMP/w, to damage."""
  target = str(tmp_path / "w")
  shutil.copytree(run, target)
  return target
