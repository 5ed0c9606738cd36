"""End to end through the CLI: 2 processes x 4 devices reproduce 1 process x 8 devices, and pmap
reproduces jit (pretraining with evaluation, checkpoints and metrics.jsonl)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from jaxpretrain import cli
from jaxpretrain.metrics import read_metrics

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS = 4


def _flags(prepared_dir, workdir, *extra):
  small = dict(num_hidden_layers=1, hidden_size=32, num_attention_heads=2, intermediate_size=64, vocab_size=512,
               max_position_embeddings=32)
  return ["pretrain", f"--config={ROOT}/configs/tiny.py", f"--workdir={workdir}",
          *[f"--config.model.{k}={v}" for k, v in small.items()],
          "--config.data.seq_len=32", f"--config.data.prepared_dir={prepared_dir}", "--config.data.prefetch=1",
          "--config.train.batch_size=16", f"--config.train.steps={STEPS}", "--config.train.log_every=1",
          "--config.train.warmup_steps=0", "--config.train.progress=false", "--config.eval.every_steps=0",
          "--config.eval.batches=1", "--config.checkpoint.every_steps=0", *extra]


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
  np.testing.assert_allclose(_losses(one_process_runs["pmap"], "eval")[1], _losses(one_process_runs["jit"], "eval")[1],
                             rtol=1e-5)
  assert len(_losses(one_process_runs["jit"], "eval")[1]) == 1


def test_two_processes_reproduce_one(one_process_runs, tiny_prepared, tmp_path):
  # The two processes shard parameters over fsdp=2 and the batch over data x fsdp, across processes.
  workdir = tmp_path / "two"
  command = [sys.executable, os.path.join(ROOT, "launch", "local.py"), "--processes=2", "--devices_per_process=4",
             "--timeout=400", "--", *_flags(tiny_prepared, workdir, "--config.mesh.fsdp=2")]
  result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=450)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  lines = [line.removeprefix("[p1] ") for line in result.stdout.splitlines()]
  summaries = [json.loads(line) for line in lines if line.startswith('{"step"')]
  assert len(summaries) == 2 and summaries[0]["step"] == summaries[1]["step"] == STEPS
  steps, losses = _losses(workdir)
  assert steps == list(range(1, STEPS + 1))                 # one writer: no duplicate rows
  np.testing.assert_allclose(losses, _losses(one_process_runs["jit"])[1], rtol=1e-5)
  np.testing.assert_allclose(_losses(workdir, "eval")[1], _losses(one_process_runs["jit"], "eval")[1], rtol=1e-5)
  assert os.path.isdir(workdir / "checkpoints" / str(STEPS))


def test_a_failing_process_fails_the_launch(tmp_path):
  # Both processes reject the flag with status 2; the launcher reports it as its own status.
  command = [sys.executable, os.path.join(ROOT, "launch", "local.py"), "--processes=2", "--devices_per_process=1",
             "--timeout=120", "--", "pretrain", f"--config={ROOT}/configs/tiny.py", f"--workdir={tmp_path}",
             "--config.no_such_key=1"]
  result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=150)
  assert result.returncode == 2
  assert "unknown config key: no_such_key" in result.stdout
