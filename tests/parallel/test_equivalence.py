"""Same seed, same global batches: every strategy computes the same losses, compiling once."""

import jax
import numpy as np
import pytest

from tests.parallel import runs

pytestmark = pytest.mark.xdist_group("strategy_runs")  # shares its module/session fixtures on one worker

OTHERS = [name for name in runs.STRATEGIES if name != "1 device"]


def _assert_same_losses(all_runs, name):
  reference, other = all_runs["1 device"].losses, all_runs[name].losses
  assert len(other) == 5
  np.testing.assert_allclose(other, reference, rtol=1e-5, err_msg=f"{name} vs 1 device")
  assert len(set(np.round(reference, 6))) == 5  # the steps really differ: the weights moved


@pytest.mark.parametrize("name", OTHERS)
def test_pretraining_losses_agree_with_one_device(pretrain_runs, name):
  _assert_same_losses(pretrain_runs, name)


@pytest.mark.parametrize("name", OTHERS)
def test_finetuning_losses_agree_with_one_device(finetune_runs, name):
  _assert_same_losses(finetune_runs, name)


def test_states_agree_after_training(pretrain_runs):
  reference = jax.device_get(pretrain_runs["1 device"].state.params)
  for name in OTHERS:
    params = jax.device_get(pretrain_runs[name].state.params)
    np.testing.assert_allclose(params["head"]["bias"], reference["head"]["bias"], rtol=1e-4, atol=1e-6)
    assert int(pretrain_runs[name].state.step) == 5


@pytest.mark.parametrize("name", list(runs.STRATEGIES))
def test_no_recompilation_after_the_first_step(pretrain_runs, finetune_runs, name):
  for all_runs in (pretrain_runs, finetune_runs):
    assert all_runs[name].recompiles == 0
    if hasattr(all_runs[name].train_step, "jitted"):  # jit strategies: one cached executable
      assert all_runs[name].train_step.jitted._cache_size() == 1
