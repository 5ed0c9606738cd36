"""End to end through the CLI: 2 processes x 4 devices reproduce 1 process x 8 devices, pmap
reproduces jit (pretraining with evaluation, checkpoints and metrics.jsonl), and a SIGTERM stops
every process at one step."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from jaxpretrain import cli
from jaxpretrain.train.metrics import read_metrics

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("multihost")]  # one_process_runs once

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS = 4


def _flags(prepared_dir, workdir, *extra):
  small = dict(
    num_hidden_layers=1,
    hidden_size=32,
    num_attention_heads=2,
    intermediate_size=64,
    vocab_size=512,
    max_position_embeddings=32,
  )
  return [
    "pretrain",
    f"--config={ROOT}/configs/tiny.py",
    f"--workdir={workdir}",
    *[f"--config.model.{k}={v}" for k, v in small.items()],
    "--config.data.seq_len=32",
    f"--config.data.prepared_dir={prepared_dir}",
    "--config.data.prefetch=1",
    "--config.train.batch_size=16",
    f"--config.train.steps={STEPS}",
    "--config.train.log_every=1",
    "--config.train.warmup_steps=0",
    "--config.train.progress=false",
    "--config.eval.every_steps=0",
    "--config.eval.batches=1",
    "--config.checkpoint.every_steps=0",
    *extra,
  ]


def _read(path) -> str:
  with open(path) as f:
    return f.read()


def _wait_for_rows(workdir, rows: int, timeout: float = 300) -> None:
  """Returns once the run has logged `rows` metrics rows (it is then inside its training loop)."""
  metrics, deadline = workdir / "metrics.jsonl", time.time() + timeout
  while time.time() < deadline and not (metrics.exists() and len(metrics.read_text().splitlines()) >= rows):
    time.sleep(0.05)


def _losses(workdir, split=None):
  rows = [r for r in read_metrics(str(workdir)) if r.get("split") == split and "loss" in r]
  return [r["step"] for r in rows], [r["loss"] for r in rows]


@pytest.fixture(scope="module")
def one_process_runs(tiny_prepared, tmp_path_factory):
  """jit and pmap over the session's 8 devices, in this process."""
  out = {}
  for name, extra in (("jit", []), ("pmap", ["--config.mesh.strategy=pmap"])):
    workdir = tmp_path_factory.mktemp(f"one_{name}")
    assert cli.main(_flags(tiny_prepared, workdir, *extra)) == 0
    out[name] = workdir
  return out


def test_pmap_reproduces_jit_end_to_end(one_process_runs):
  steps, jit_losses = _losses(one_process_runs["jit"])
  assert steps == list(range(1, STEPS + 1))
  np.testing.assert_allclose(_losses(one_process_runs["pmap"])[1], jit_losses, rtol=1e-5)
  np.testing.assert_allclose(
    _losses(one_process_runs["pmap"], "eval")[1], _losses(one_process_runs["jit"], "eval")[1], rtol=1e-5
  )
  assert len(_losses(one_process_runs["jit"], "eval")[1]) == 1


def test_two_processes_reproduce_one(one_process_runs, tiny_prepared, tmp_path):
  # The two processes shard parameters over fsdp=2 and the batch over data x fsdp, across processes.
  workdir = tmp_path / "two"
  command = [
    sys.executable,
    os.path.join(ROOT, "launch", "local.py"),
    "--processes=2",
    "--devices_per_process=4",
    "--timeout=400",
    "--",
    *_flags(tiny_prepared, workdir, "--config.mesh.fsdp=2"),
  ]
  result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=450)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  lines = [line.removeprefix("[p1] ") for line in result.stdout.splitlines()]
  summaries = [json.loads(line) for line in lines if line.startswith('{"step"')]
  assert len(summaries) == 2 and summaries[0]["step"] == summaries[1]["step"] == STEPS
  steps, losses = _losses(workdir)
  assert steps == list(range(1, STEPS + 1))  # one writer: no duplicate rows
  np.testing.assert_allclose(losses, _losses(one_process_runs["jit"])[1], rtol=1e-5)
  np.testing.assert_allclose(_losses(workdir, "eval")[1], _losses(one_process_runs["jit"], "eval")[1], rtol=1e-5)
  assert os.path.isdir(workdir / "checkpoints" / str(STEPS))


def test_a_failing_process_fails_the_launch(tmp_path):
  # Both processes reject the flag with status 2; the launcher reports it as its own status.
  command = [
    sys.executable,
    os.path.join(ROOT, "launch", "local.py"),
    "--processes=2",
    "--devices_per_process=1",
    "--timeout=120",
    "--",
    "pretrain",
    f"--config={ROOT}/configs/tiny.py",
    f"--workdir={tmp_path}",
    "--config.no_such_key=1",
  ]
  result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=150)
  assert result.returncode == 2
  assert "unknown config key: no_such_key" in result.stdout


def test_sigterm_to_one_process_stops_every_process_at_one_step_and_resumes(tiny_prepared, tmp_path):
  """A preemption notice reaches one host: both save the same step, exit 0, and the rerun resumes exactly.

  JAX's preemption service picks the step (its fallback without the service: tests/train/test_preemption.py)."""
  spec = importlib.util.spec_from_file_location("local_launcher", os.path.join(ROOT, "launch", "local.py"))
  launcher = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(launcher)
  steps, workdir = 40, tmp_path / "run"
  flags = _flags(
    tiny_prepared,
    workdir,
    "--config.mesh.fsdp=2",
    f"--config.train.steps={steps}",
    "--config.checkpoint.every_steps=1000",
  )
  env, port = launcher.process_env(4), launcher.free_port()
  # Output to files, not pipes: nothing reads a pipe until the end, and a full one would block the run.
  logs = [(tmp_path / f"p{i}.out", tmp_path / f"p{i}.err") for i in range(2)]
  procs = []
  for i, (out, err) in enumerate(logs):
    with open(out, "w") as out_file, open(err, "w") as err_file:  # the child keeps its own copies
      procs.append(
        subprocess.Popen(
          [
            sys.executable,
            "-m",
            "jaxpretrain.cli",
            *flags,
            f"--coordinator_address=localhost:{port}",
            "--num_processes=2",
            f"--process_id={i}",
          ],
          cwd=ROOT,
          env=env,
          stdout=out_file,
          stderr=err_file,
        )
      )
  _wait_for_rows(workdir, 3)
  procs[1].send_signal(signal.SIGTERM)  # the notice reaches process 1 only
  for p in procs:
    p.wait(timeout=300)
  outputs = [(_read(out), _read(err)) for out, err in logs]
  for p, (_, err) in zip(procs, outputs):
    assert p.returncode == 0, err[-3000:]
  summaries = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
  stop = summaries[0]["step"]
  assert all(s["preempted"] and s["step"] == stop for s in summaries) and 3 <= stop < steps
  from jaxpretrain import checkpoint as checkpoint_lib

  assert checkpoint_lib.Checkpointer(str(workdir), read_only=True).latest_step() == stop

  resumed = subprocess.run(
    [
      sys.executable,
      os.path.join(ROOT, "launch", "local.py"),
      "--processes=2",
      "--devices_per_process=4",
      "--timeout=400",
      "--",
      *flags,
    ],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=450,
  )
  assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
  reference = tmp_path / "reference"
  assert cli.main(_flags(tiny_prepared, reference, "--config.mesh.fsdp=2", f"--config.train.steps={steps}")) == 0
  run_steps, losses = _losses(workdir)
  assert run_steps == list(range(1, steps + 1))  # no step lost or repeated across the stop
  np.testing.assert_allclose(losses, _losses(reference)[1], rtol=1e-5)


def _sigterm_the_launcher(tiny_prepared, tmp_path, ready) -> tuple[list[dict], object]:
  """Runs a 40-step job under launch/local.py (2 processes), SIGTERMs the launcher once `ready(workdir)`
  holds, and returns (the processes' JSON summaries, the workdir) after checking the exit status is 0."""
  workdir = tmp_path / "run"
  command = [
    sys.executable,
    os.path.join(ROOT, "launch", "local.py"),
    "--processes=2",
    "--devices_per_process=4",
    "--timeout=400",
    "--",
    *_flags(tiny_prepared, workdir, "--config.train.steps=40", "--config.checkpoint.every_steps=1000"),
  ]
  out_path, err_path = tmp_path / "launcher.out", tmp_path / "launcher.err"
  with open(out_path, "w") as out_file, open(err_path, "w") as err_file:  # files, not pipes: see above
    launcher = subprocess.Popen(command, cwd=ROOT, stdout=out_file, stderr=err_file)
  deadline = time.monotonic() + 300
  while not ready(workdir) and launcher.poll() is None and time.monotonic() < deadline:
    time.sleep(0.05)
  launcher.send_signal(signal.SIGTERM)
  launcher.wait(timeout=300)
  out, err = _read(out_path), _read(err_path)
  assert launcher.returncode == 0, out[-3000:] + err[-3000:]
  return [json.loads(line.removeprefix("[p1] ")) for line in out.splitlines() if '{"step"' in line], workdir


def _has_rows(rows: int):
  def ready(workdir) -> bool:
    metrics = workdir / "metrics.jsonl"
    return metrics.exists() and len(metrics.read_text().splitlines()) >= rows

  return ready


def test_sigterm_to_the_local_launcher_saves_and_exits_zero(tiny_prepared, tmp_path):
  summaries, workdir = _sigterm_the_launcher(tiny_prepared, tmp_path, _has_rows(3))
  assert len(summaries) == 2 and summaries[0]["step"] == summaries[1]["step"]
  assert summaries[0]["preempted"] and summaries[1]["preempted"] and 3 <= summaries[0]["step"] < 40
  from jaxpretrain import checkpoint as checkpoint_lib

  assert checkpoint_lib.Checkpointer(str(workdir), read_only=True).latest_step() == summaries[0]["step"]


def test_sigterm_during_setup_stops_every_process_after_one_saved_step(tiny_prepared, tmp_path):
  """With several processes JAX's preemption service owns SIGTERM: a notice during setup (here:
  once config.json is written, before compilation) stops every process at the first step, saved."""
  summaries, workdir = _sigterm_the_launcher(tiny_prepared, tmp_path, lambda w: (w / "config.json").exists())
  assert [(s["step"], s["preempted"]) for s in summaries] == [(1, True), (1, True)]
  from jaxpretrain import checkpoint as checkpoint_lib

  assert checkpoint_lib.Checkpointer(str(workdir), read_only=True).all_steps() == [1]
