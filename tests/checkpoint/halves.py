"""A run stopped halfway (like a preemption) and resumed, compared with the uninterrupted run."""

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxpretrain import checkpoint as checkpoint_lib
from jaxpretrain.train import loop
from jaxpretrain.train.metrics import read_metrics


def losses(workdir):
  """[(step, training loss)] of a run's metrics rows."""
  return [(r["step"], r["loss"]) for r in read_metrics(str(workdir)) if "split" not in r]


def final_params(workdir):
  """(the latest checkpoint's step, its whole TrainState as numpy arrays)."""
  ckpt = checkpoint_lib.Checkpointer(str(workdir), read_only=True)
  step = ckpt.latest_step()
  restored = ckpt.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
  return step, jax.tree.map(np.asarray, restored["state"])


def run_until(config, workdir, stop_at):
  """Runs `config` but stops (like a preemption) right after step `stop_at`."""
  from jaxpretrain.train import preemption

  original = preemption.PreemptionWatcher.should_stop
  preemption.PreemptionWatcher.should_stop = lambda self, step: step >= stop_at
  try:
    summary = loop.run(config, str(workdir))
  finally:
    preemption.PreemptionWatcher.should_stop = original
  assert summary["preempted"] and summary["step"] == stop_at
  return summary


def assert_two_halves_equal_one_run(config, tmp_path, total: int, *, first_half=None) -> None:
  """`config()` run whole, and run to `total // 2` then resumed by the same command, give the same losses
  and the same final state, bit for bit.

  Args:
    config: () -> the run's config (`train.steps` = `total`, a checkpoint at `total // 2`).
    tmp_path: where the two workdirs go.
    total: the run's steps.
    first_half: the config of the interrupted first half; None = `config()`.
  """
  loop.run(config(), str(tmp_path / "whole"))
  run_until(first_half or config(), tmp_path / "split", total // 2)
  loop.run(config(), str(tmp_path / "split"))
  assert losses(tmp_path / "split") == losses(tmp_path / "whole")
  step_a, a = final_params(tmp_path / "whole")
  step_b, b = final_params(tmp_path / "split")
  assert step_a == step_b == total
  jax.tree.map(np.testing.assert_array_equal, a, b)
