"""Ctrl-C: the first one saves at the next step and exits 0 (like SIGTERM), the second aborts at
once (during setup: tests/train/test_sigterm_before_training.py). The same command resumes."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from jaxpretrain import checkpoint as checkpoint_lib
from jaxpretrain import cli
from jaxpretrain.train import preemption

pytestmark = pytest.mark.slow
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _argv(workdir, prepared, steps):
  return [
    sys.executable,
    "-m",
    "jaxpretrain",
    "pretrain",
    "--config=configs/tiny.py",
    f"--workdir={workdir}",
    "--config.model.vocab_size=512",
    "--config.model.max_position_embeddings=32",
    "--config.data.seq_len=32",
    f"--config.data.prepared_dir={prepared}",
    "--config.train.batch_size=8",
    f"--config.train.steps={steps}",
    "--config.train.log_every=1",
    "--config.train.progress=false",
    "--config.eval.every_steps=0",
    "--config.checkpoint.every_steps=100000",
  ]


def _start(workdir, prepared, steps, tmp_path):
  err = open(tmp_path / "err", "w")
  out = open(tmp_path / "out", "w")
  return subprocess.Popen(_argv(workdir, prepared, steps), cwd=ROOT, stdout=out, stderr=err), out, err


def _wait_for_rows(workdir, rows, proc, timeout=180):
  metrics, deadline = workdir / "metrics.jsonl", time.time() + timeout
  while time.time() < deadline and proc.poll() is None:
    if metrics.exists() and len(metrics.read_text().splitlines()) >= rows:
      return
    time.sleep(0.05)
  raise AssertionError("the run did not reach its training loop")


def test_first_ctrl_c_saves_and_exits_0_and_the_same_command_resumes(tiny_prepared, tmp_path):
  workdir = tmp_path / "w"
  proc, out, err = _start(workdir, tiny_prepared, 100000, tmp_path)
  _wait_for_rows(workdir, 3, proc)
  proc.send_signal(signal.SIGINT)
  code = proc.wait(timeout=180)
  out.close(), err.close()
  stderr = (tmp_path / "err").read_text()
  assert code == 0 and "Traceback" not in stderr, stderr[-3000:]
  summary = json.loads((tmp_path / "out").read_text().strip().splitlines()[-1])
  stop = summary["step"]
  assert summary["preempted"] and stop >= 3
  step_dir = os.path.join(checkpoint_lib.checkpoint_dir(str(workdir)), str(stop))
  assert (
    f"jaxpretrain: note: stopped by Ctrl-C after step {stop}, saved in {step_dir}; run the same command to resume"
    in stderr
  )
  assert checkpoint_lib.Checkpointer(str(workdir), read_only=True).all_steps() == [stop]
  resumed = subprocess.run(
    _argv(workdir, tiny_prepared, stop + 2), cwd=ROOT, capture_output=True, text=True, timeout=300
  )
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert f"resuming from step {stop}" in resumed.stderr
  assert json.loads(resumed.stdout.strip().splitlines()[-1])["step"] == stop + 2


def test_the_first_ctrl_c_requests_a_stop_and_the_second_aborts(capsys):
  before = signal.getsignal(signal.SIGINT)
  with preemption.PreemptionWatcher() as watcher:
    assert not watcher.should_stop(1)
    os.kill(os.getpid(), signal.SIGINT)
    assert watcher.should_stop(2) and watcher.signal_name == "Ctrl-C"
    assert "saving at the next step" in capsys.readouterr().err
    with pytest.raises(KeyboardInterrupt):
      os.kill(os.getpid(), signal.SIGINT)
      time.sleep(0.1)  # the handler runs between bytecodes of the main thread
  assert signal.getsignal(signal.SIGINT) == before


def test_an_abort_says_what_was_kept(monkeypatch, capsys):
  def interrupted(args, overrides):
    raise KeyboardInterrupt

  monkeypatch.setattr(cli, "cmd_plot", interrupted)
  assert cli.main(["plot", "--workdir=/nowhere"]) == 130
  assert capsys.readouterr().err == (
    "jaxpretrain: interrupted without saving; checkpoints already written are kept (the same command resumes "
    "from the latest)\n"
  )
