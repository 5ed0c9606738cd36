"""Faults: interrupted saves, corrupt checkpoints, non-finite losses, and the `checkpoints` listing."""

import glob
import os
import shutil

import pytest

from jaxpretrain import checkpoint as checkpoint_lib
from jaxpretrain.cli import main as cli_main
from jaxpretrain.errors import UserError
from jaxpretrain.train import loop
from jaxpretrain.train.metrics import read_metrics
from tests.checkpoint.conftest import copy_run
from tests.run_configs import tiny_pretrain_config

pytestmark = pytest.mark.xdist_group("checkpoint_faults")  # shares its module/session fixtures on one worker


def test_interrupted_save_never_becomes_latest_and_is_cleaned_up(finished_run, tmp_path, tiny_prepared):
  workdir = copy_run(finished_run, tmp_path)
  root = checkpoint_lib.checkpoint_dir(workdir)
  partial = os.path.join(root, "12.orbax-checkpoint-tmp-1700000000")
  shutil.copytree(os.path.join(root, "8", "state"), os.path.join(partial, "state"))  # half a step
  assert checkpoint_lib.Checkpointer(workdir, read_only=True).latest_step() == 8
  loop.run(tiny_pretrain_config(tiny_prepared, **{"train.steps": 10}), workdir)  # restart
  assert not os.path.exists(partial)
  assert checkpoint_lib.Checkpointer(workdir, read_only=True).latest_step() == 10


def test_corrupt_latest_falls_back_to_previous_step(finished_run, tmp_path, tiny_prepared, capsys):
  workdir = copy_run(finished_run, tmp_path)
  state_dir = checkpoint_lib.Checkpointer(workdir, read_only=True).item_path(8, "state")
  for path in glob.glob(os.path.join(state_dir, "**", "*"), recursive=True):
    if os.path.isfile(path) and os.path.getsize(path) > 0:
      with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 3)
  summary = loop.run(tiny_pretrain_config(tiny_prepared, **{"train.steps": 8}), workdir)
  err = capsys.readouterr().err
  assert "checkpoint step 8" in err and "corrupt" in err
  assert summary["step"] == 8
  # Steps 5..8 were trained again from step 4 (their first rows dropped on resume, so each step is
  # logged once), and a good step 8 replaced the corrupt one.
  steps = [r["step"] for r in read_metrics(workdir) if "split" not in r]
  assert steps == list(range(1, 9))
  assert os.path.isdir(os.path.join(checkpoint_lib.checkpoint_dir(workdir), "8.corrupt"))
  rows = {r["path"].rsplit("/", 1)[1]: r for r in checkpoint_lib.describe(workdir)}
  assert rows["8"]["complete"] and rows["8.corrupt"]["state"] == "corrupt"


def test_nonfinite_raise_names_the_step_and_writes_no_bad_checkpoint(tmp_path, tiny_prepared, capsys):
  config = tiny_pretrain_config(
    tiny_prepared,
    **{"train.learning_rate": 1e25, "train.max_grad_norm": 0.0, "train.warmup_steps": 0, "checkpoint.every_steps": 1},
  )
  with pytest.raises(UserError, match=r"non-finite loss or gradient at step (\d+)") as info:
    loop.run(config, str(tmp_path / "w"))
  bad_step = int(info.value.args[0].split("step ")[1].split(";")[0])
  saved = checkpoint_lib.Checkpointer(str(tmp_path / "w"), read_only=True).all_steps()
  assert all(s < bad_step for s in saved)


def test_nonfinite_skip_counts_and_finishes(tmp_path, tiny_prepared):
  config = tiny_pretrain_config(
    tiny_prepared,
    **{"train.learning_rate": 1e25, "train.max_grad_norm": 0.0, "train.warmup_steps": 0, "train.on_nonfinite": "skip"},
  )
  summary = loop.run(config, str(tmp_path / "w"))
  assert summary["step"] == 8 and summary["train"]["skipped"] >= 1


def test_checkpoints_command_lists_steps(finished_run, capsys):
  assert cli_main(["checkpoints", f"--workdir={finished_run}"]) == 0
  lines = capsys.readouterr().out.strip().splitlines()
  assert lines[0].split() == ["step", "state", "size", "metrics"]
  assert [line.split()[:2] for line in lines[1:]] == [["4", "complete"], ["8", "complete"]]
  assert cli_main(["checkpoints", f"--workdir={finished_run}/nope"]) == 2


def test_checkpoints_into_a_closed_pipe_exits_quietly(finished_run):
  import subprocess
  import sys

  # `jaxpretrain checkpoints --json | head -c 0`: the reader is gone before anything is written.
  read_end, write_end = os.pipe()
  os.close(read_end)
  lister = subprocess.run(
    [
      sys.executable,
      "-c",
      "from jaxpretrain.cli import entry_point; entry_point()",
      "checkpoints",
      f"--workdir={finished_run}",
      "--json",
    ],
    stdout=write_end,
    stderr=subprocess.PIPE,
    timeout=120,
  )
  os.close(write_end)
  err = lister.stderr
  assert lister.returncode == 0 and b"Traceback" not in err and b"BrokenPipe" not in err, err.decode()


def test_failed_async_write_surfaces_as_an_error_at_the_next_save(tmp_path, tiny_prepared):
  import resource
  import signal
  import subprocess
  import sys

  def file_size_limit():  # every write over 64 KB fails with EFBIG, like a full disk
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))

  args = [
    sys.executable,
    "-c",
    "from jaxpretrain.cli import entry_point; entry_point()",
    "pretrain",
    "--config=configs/tiny.py",
    f"--workdir={tmp_path / 'w'}",
    "--config.model.vocab_size=512",
    "--config.model.max_position_embeddings=32",
    "--config.data.seq_len=32",
    f"--config.data.prepared_dir={tiny_prepared}",
    "--config.train.batch_size=8",
    "--config.train.steps=6",
    "--config.checkpoint.every_steps=2",
    "--config.train.progress=false",
    "--config.eval.every_steps=0",
  ]
  cwd = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  result = subprocess.run(args, cwd=cwd, preexec_fn=file_size_limit, capture_output=True, text=True, timeout=300)
  assert result.returncode == 2
  # One line, no tracebacks (tensorstore's late "Event loop is closed" callbacks are dropped).
  assert "Traceback" not in result.stderr, result.stderr[-2000:]
  ours = [line for line in result.stderr.splitlines() if line.startswith("jaxpretrain: error:")]
  # The step whose (asynchronous) write failed is named, not the step being saved when it surfaced.
  step_2 = os.path.join(str(tmp_path / "w"), "checkpoints", "2")
  assert ours == [
    f"jaxpretrain: error: checkpoint write failed (saving step 2 to {step_2}): File too large [errno 27]; "
    "no earlier step was saved"
  ], result.stderr[-2000:]
  assert checkpoint_lib.Checkpointer(str(tmp_path / "w"), read_only=True).all_steps() == []


def test_checkpoint_that_does_not_fit_the_config_is_an_error_not_a_fallback(finished_run, tmp_path, tiny_prepared):
  workdir = copy_run(finished_run, tmp_path)
  config = tiny_pretrain_config(tiny_prepared, **{"model.intermediate_size": 128})
  with pytest.raises(
    UserError,
    match=r"checkpoint step 8 .* does not fit this config: "
    r"params/encoder/layer_0/mlp/intermediate/bias is shape \(64,\) there but shape "
    r"\(128,\) here",
  ):
    loop.run(config, workdir)
  assert checkpoint_lib.Checkpointer(workdir, read_only=True).all_steps() == [4, 8]  # nothing set aside


def test_only_late_write_callbacks_are_dropped_from_unraisable_reports(monkeypatch):
  import sys
  import types

  seen = []
  monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: seen.append(unraisable.exc_value))
  checkpoint_lib.manager._quiet_late_write_callbacks()
  checkpoint_lib.manager._quiet_late_write_callbacks()  # installing twice does not stack filters
  late, other = RuntimeError("Event loop is closed"), RuntimeError("something else")
  same_text_other_type = ValueError("Event loop is closed")
  for error in (late, other, same_text_other_type):
    sys.unraisablehook(
      types.SimpleNamespace(exc_type=type(error), exc_value=error, exc_traceback=None, err_msg=None, object=None)
    )
  assert seen == [other, same_text_other_type]


def _link_step_elsewhere(workdir, step, tmp_path):
  """Moves checkpoints/STEP out of the run and links it back: a user's symlink inside the run."""
  step_dir = os.path.join(checkpoint_lib.checkpoint_dir(workdir), str(step))
  elsewhere = str(tmp_path / f"elsewhere-{step}")
  shutil.move(step_dir, elsewhere)
  os.symlink(elsewhere, step_dir)
  return step_dir, elsewhere


def _tree(path):
  return sorted(os.path.relpath(os.path.join(d, f), path) for d, _, fs in os.walk(path) for f in fs)


def test_a_linked_checkpoint_step_is_refused_by_writers_and_readers_and_kept(
  finished_run, tmp_path, tiny_prepared, capsys
):
  workdir = copy_run(finished_run, tmp_path)
  link, target = _link_step_elsewhere(workdir, 4, tmp_path)
  before = _tree(target)
  # Resuming with keep=1 would have orbax delete step 4 (removing the link) after the next save.
  config = tiny_pretrain_config(tiny_prepared, **{"train.steps": 12, "checkpoint.keep": 1})
  with pytest.raises(UserError, match=rf"^{link} is a symbolic link \(to {target}\): jaxpretrain neither follows"):
    loop.run(config, workdir)
  capsys.readouterr()
  for command in (["export", f"--out={tmp_path / 'hf'}"], ["evaluate"], ["checkpoints"]):
    code = cli_main([command[0], f"--workdir={workdir}", *command[1:]])
    out, err = capsys.readouterr()
    if command[0] == "checkpoints":  # the listing names the link and reads nothing through it
      assert code == 0 and "link" in out and f"a symbolic link to {target}" in out
    else:
      assert code == 2 and err.startswith(f"jaxpretrain: error: {link} is a symbolic link (to {target})"), err
      assert err.count("\n") == 1, err
  assert os.path.islink(link) and _tree(target) == before
  assert not os.path.exists(tmp_path / "hf")
  rows = {r["step"]: r for r in checkpoint_lib.describe(workdir)}
  assert rows[4]["state"] == "link" and rows[4]["problem"] == f"a symbolic link to {target}"
  assert rows[8]["state"] == "complete"


@pytest.mark.parametrize("name", ["metrics.jsonl", "config.json", "tokenizer"])
def test_a_linked_run_file_is_refused_before_anything_is_written(finished_run, tmp_path, tiny_prepared, name):
  workdir = copy_run(finished_run, tmp_path)
  path = os.path.join(workdir, name)
  target = str(tmp_path / f"user-{name}")
  shutil.move(path, target)
  os.symlink(target, path)
  before = _tree(target) if os.path.isdir(target) else open(target).read()
  with pytest.raises(UserError, match=rf"^{path} is a symbolic link"):
    loop.run(tiny_pretrain_config(tiny_prepared, **{"train.steps": 10}), workdir)
  assert os.path.islink(path) and (_tree(target) if os.path.isdir(target) else open(target).read()) == before
  assert checkpoint_lib.Checkpointer(workdir, read_only=True).all_steps() == [4, 8]


def test_a_step_set_aside_twice_keeps_both_copies(finished_run, tmp_path, tiny_prepared, capsys):
  workdir = copy_run(finished_run, tmp_path)
  root = checkpoint_lib.checkpoint_dir(workdir)
  shutil.copytree(os.path.join(root, "8"), os.path.join(root, "8.corrupt"))  # set aside by an earlier resume
  for path in glob.glob(os.path.join(root, "8", "state", "**", "*"), recursive=True):
    if os.path.isfile(path) and os.path.getsize(path) > 0:
      with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 3)
  loop.run(tiny_pretrain_config(tiny_prepared, **{"train.steps": 8}), workdir)
  assert "checkpoint step 8" in capsys.readouterr().err
  assert {"8", "8.corrupt", "8.corrupt-2"} <= set(os.listdir(root))
  states = {os.path.basename(r["path"]): r["state"] for r in checkpoint_lib.describe(workdir)}
  assert states["8"] == "complete" and states["8.corrupt"] == states["8.corrupt-2"] == "corrupt"
