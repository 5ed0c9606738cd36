"""Keep-best: the best step by the eval metric is the one kept and reported, also when it is not the latest."""

import jax.numpy as jnp
import pytest

from jaxpretrain import checkpoint as checkpoint_lib

ACCURACY = {2: 0.50, 4: 0.70, 6: 0.60, 8: 0.55}  # best (max) at 4; best by loss (min) at 6
LOSS = {2: 2.0, 4: 1.5, 6: 1.2, 8: 1.4}


@pytest.fixture(scope="module")
def run_dirs(tmp_path_factory):
  dirs = {}
  for metric, mode in (("accuracy", "max"), ("loss", "min")):
    workdir = str(tmp_path_factory.mktemp(metric))
    ckpt = checkpoint_lib.Checkpointer(workdir, keep=1, async_save=False, best_metric=metric, best_mode=mode)
    for step in sorted(ACCURACY):
      ckpt.save(
        step,
        {"w": jnp.full((2,), float(step))},
        data_state={},
        meta={"step": step, "metrics": {"accuracy": ACCURACY[step], "loss": LOSS[step]}},
        metrics={"accuracy": ACCURACY[step], "loss": LOSS[step]},
      )
    ckpt.wait()
    ckpt.close()
    dirs[metric] = workdir
  return dirs


@pytest.mark.parametrize("metric,mode,best", [("accuracy", "max", 4), ("loss", "min", 6)])
def test_best_step_is_the_best_metric_not_the_latest(run_dirs, metric, mode, best):
  workdir = run_dirs[metric]
  ckpt = checkpoint_lib.Checkpointer(workdir, read_only=True, best_metric=metric, best_mode=mode)
  assert ckpt.all_steps() == sorted({best, 8})  # keep=1 latest, plus the best one
  assert ckpt.best_step() == best
  ckpt.close()
  assert checkpoint_lib.resolve_step(workdir, None, best_metric=metric, best_mode=mode) == (best, "best")


def test_without_a_metric_there_is_no_best_step(run_dirs):
  ckpt = checkpoint_lib.Checkpointer(run_dirs["loss"], read_only=True)
  assert ckpt.best_step() is None
  ckpt.close()


def test_the_best_step_survives_saves_after_a_resume(run_dirs, tmp_path):
  import shutil

  workdir = str(tmp_path / "w")
  shutil.copytree(run_dirs["accuracy"], workdir)
  ckpt = checkpoint_lib.Checkpointer(workdir, keep=1, async_save=False, best_metric="accuracy", best_mode="max")
  for step in (10, 12):  # worse than step 4
    metrics = {"accuracy": 0.1, "loss": 3.0}
    ckpt.save(step, {"w": jnp.zeros((2,))}, data_state={}, meta={"step": step, "metrics": metrics}, metrics=metrics)
  ckpt.wait()
  assert 4 in ckpt.all_steps() and ckpt.best_step() == 4
  ckpt.close()
