"""SIGTERM (or Ctrl-C) while a run is still being set up (here: preparing its data) exits 0 and says
that nothing was trained yet; the same command then starts the run normally."""

import os
import signal
import subprocess
import sys
import time

import pytest


@pytest.mark.slow
@pytest.mark.parametrize("signum, name", [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "Ctrl-C")])
def test_a_stop_during_prepare_exits_0_saying_nothing_was_trained(tmp_path, signum, name):
  workdir = tmp_path / "w"
  argv = [
    sys.executable,
    "-c",
    "from jaxpretrain.cli import entry_point; entry_point()",
    "pretrain",
    "--config=configs/tiny.py",
    f"--workdir={workdir}",
    "--config.train.steps=2",
    "--config.train.progress=false",
    "--config.data.embedded_documents=200000",
  ]
  with open(tmp_path / "err", "w") as err:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.time() + 120
    while not (workdir / "data").exists() and time.time() < deadline and proc.poll() is None:
      time.sleep(0.1)  # the prepared-data directory is claimed as preparing starts
    assert proc.poll() is None, "the run ended before it was signalled"
    os.kill(proc.pid, signum)
    code = proc.wait(timeout=120)
  stderr = (tmp_path / "err").read_text()
  assert code == 0, stderr
  assert f"jaxpretrain: {name} before training started: nothing was trained yet" in stderr
  assert "Traceback" not in stderr
  assert not (workdir / "checkpoints").exists() or not os.listdir(workdir / "checkpoints")
