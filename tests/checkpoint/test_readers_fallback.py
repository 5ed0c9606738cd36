"""Commands that read a checkpoint (export, evaluate, generate, warm start) pass over a corrupt
latest step with one warning and without moving it; a corrupt step asked for by number is one
error line; `jaxpretrain checkpoints` lists a truncated step as corrupt."""

import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from jaxpretrain import checkpoint as checkpoint_lib
from jaxpretrain import config as config_lib
from jaxpretrain.cli import main as cli_main
from jaxpretrain.commands.evaluate import evaluate
from jaxpretrain.errors import UserError
from tests.checkpoint.conftest import copy_run

pytestmark = pytest.mark.xdist_group("checkpoint_readers")  # one worker shares the module's run

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _data_files(workdir, step):
  """The array data files of a step's state (OCDBT `d/` files of every process)."""
  state_dir = checkpoint_lib.item_path(workdir, step)
  return [p for p in glob.glob(os.path.join(state_dir, "ocdbt.process_*", "d", "*")) if os.path.isfile(p)]


def truncate(workdir, step):
  """What a full disk or an interrupted copy leaves: every array data file cut to a third."""
  for path in _data_files(workdir, step):
    os.truncate(path, os.path.getsize(path) // 3)


def scramble(workdir, step):
  """Bytes overwritten in place (sizes kept): only reading the arrays finds it."""
  for path in _data_files(workdir, step):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
      f.write(b"\x01" * size)


def _step_dirs(workdir):
  return sorted(os.listdir(checkpoint_lib.checkpoint_dir(workdir)))


def _one_warning(err, step, used):
  lines = err.strip().splitlines()
  assert len(lines) == 1, err
  assert lines[0].startswith(f"jaxpretrain: warning: checkpoint step {step} ") and "corrupt" in lines[0], err
  assert lines[0].endswith(f"using step {used}"), err


def test_export_passes_over_a_truncated_latest_step_and_moves_nothing(finished_run, tmp_path, capsys):
  workdir = copy_run(finished_run, tmp_path)
  truncate(workdir, 8)
  before = _step_dirs(workdir)
  assert cli_main(["export", f"--workdir={workdir}", f"--out={tmp_path / 'hf'}"]) == 0
  captured = capsys.readouterr()
  assert json.loads(captured.out)["step"] == 4
  _one_warning(captured.err, 8, 4)
  assert _step_dirs(workdir) == before  # read-only: no 8.corrupt
  from safetensors.numpy import load_file

  exported = load_file(str(tmp_path / "hf" / "model.safetensors"))
  at_4 = checkpoint_lib.restore_params(checkpoint_lib.item_path(workdir, 4))
  np.testing.assert_array_equal(
    exported["bert.embeddings.word_embeddings.weight"], at_4["encoder"]["embeddings"]["word_embeddings"]["embedding"]
  )


def test_a_corrupt_step_asked_for_is_one_error_line(finished_run, tmp_path, capsys):
  workdir = copy_run(finished_run, tmp_path)
  truncate(workdir, 8)
  assert cli_main(["export", f"--workdir={workdir}", f"--out={tmp_path / 'hf'}", "--step=8"]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith("jaxpretrain: error: checkpoint step 8 ") and "corrupt" in err[0], err
  assert not os.path.exists(tmp_path / "hf")
  with pytest.raises(UserError, match=r"checkpoint step 8 .* is incomplete or corrupt \(state/.* is truncated"):
    checkpoint_lib.read_step(workdir, lambda s: None, 8)
  assert checkpoint_lib.read_step(workdir, lambda s: s * 10, 4) == (4, "given", 40)


def test_no_loadable_step_is_one_error_naming_each(finished_run, tmp_path):
  workdir = copy_run(finished_run, tmp_path)
  truncate(workdir, 8)
  truncate(workdir, 4)
  with pytest.raises(UserError, match=r"no checkpoint in .* loads: step 8 is incomplete or corrupt .*; step 4 is"):
    checkpoint_lib.read_step(workdir, lambda s: None)


def test_a_step_whose_arrays_fail_to_read_is_passed_over_without_tracebacks(finished_run, tmp_path):
  workdir = copy_run(finished_run, tmp_path)
  scramble(workdir, 8)
  assert checkpoint_lib.step_problem(os.path.join(checkpoint_lib.checkpoint_dir(workdir), "8")) is None
  command = [sys.executable, "-c", "from jaxpretrain.cli import entry_point; entry_point()", "export"]
  result = subprocess.run(
    [*command, f"--workdir={workdir}", f"--out={tmp_path / 'hf'}"],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  assert json.loads(result.stdout)["step"] == 4
  _one_warning(result.stderr, 8, 4)  # tensorstore's late "Event loop is closed" callbacks are not shown
  result = subprocess.run(
    [*command, f"--workdir={workdir}", f"--out={tmp_path / 'hf8'}", "--step=8"],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr[-3000:]
  assert "checkpoint step 8" in result.stderr and "corrupt" in result.stderr


def test_evaluate_passes_over_a_corrupt_latest_step(finished_run, tmp_path, capsys):
  workdir = copy_run(finished_run, tmp_path)
  truncate(workdir, 8)
  before = _step_dirs(workdir)
  config = config_lib.load_saved(workdir)
  result = evaluate(config, workdir)
  assert result["step"] == 4 and result["checkpoint"] == "latest"
  _one_warning(capsys.readouterr().err, 8, 4)
  assert _step_dirs(workdir) == before
  with pytest.raises(UserError, match=r"checkpoint step 8 .* is incomplete or corrupt"):
    evaluate(config, workdir, step=8)


def test_checkpoints_lists_truncated_and_deleted_steps_as_corrupt(finished_run, tmp_path, capsys):
  workdir = copy_run(finished_run, tmp_path)
  truncate(workdir, 8)
  for path in _data_files(workdir, 4):
    os.remove(path)
  assert cli_main(["checkpoints", f"--workdir={workdir}"]) == 0
  lines = capsys.readouterr().out.strip().splitlines()
  assert [line.split()[:2] for line in lines[1:]] == [["4", "corrupt"], ["8", "corrupt"]]
  rows = checkpoint_lib.describe(workdir)
  assert [r["complete"] for r in rows] == [False, False]
  assert "is missing" in rows[0]["problem"] and "is truncated" in rows[1]["problem"]
  whole = checkpoint_lib.describe(finished_run)
  assert [(r["state"], r["problem"]) for r in whole] == [("complete", None), ("complete", None)]
