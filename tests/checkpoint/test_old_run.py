"""A run saved before the package was restructured (commit 790f3f9) still lists, resumes and
evaluates: the checkpoint layout, config.json and the prepared data are read as they were written.

The fixture is a 4-step tiny BERT (1 layer, hidden 32, vocab 256, seq 32) made by that commit's
`jaxpretrain pretrain --config=configs/tiny.py` (overrides in its config.json).
"""

import json
import os
import shutil

import numpy as np
import pytest

from jaxpretrain import checkpoint as checkpoint_lib
from jaxpretrain import config as config_lib
from jaxpretrain.cli import main as cli_main

FIXTURE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "run_790f3f9")
pytestmark = pytest.mark.slow


@pytest.fixture()
def old_run(tmp_path):
  workdir = str(tmp_path / "run")
  shutil.copytree(FIXTURE, workdir)
  return workdir


def test_old_run_lists_and_resumes(old_run, capsys):
  assert cli_main(["checkpoints", f"--workdir={old_run}", "--json"]) == 0
  rows = json.loads(capsys.readouterr().out)
  assert [(r["step"], r["state"]) for r in rows] == [(4, "complete")]
  saved = checkpoint_lib.restore_params(checkpoint_lib.item_path(old_run, 4))
  assert cli_main(["pretrain", f"--workdir={old_run}", "--config.train.steps=6"]) == 0
  summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert summary["step"] == 6
  resumed = checkpoint_lib.restore_params(checkpoint_lib.item_path(old_run, 6))
  assert set(resumed) == set(saved)  # same tree; trained on from the saved step, so values moved
  word = ("encoder", "embeddings", "word_embeddings", "embedding")
  a, b = saved, resumed
  for k in word:
    a, b = a[k], b[k]
  assert a.shape == b.shape and 0 < float(np.abs(np.asarray(a) - np.asarray(b)).max()) < 0.1
  config = config_lib.load_saved(old_run)
  assert config.train.steps == 6


def test_old_run_evaluates(old_run, capsys):
  assert cli_main(["evaluate", f"--workdir={old_run}"]) == 0
  result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert result["step"] == 4 and np.isfinite(result["loss"])
