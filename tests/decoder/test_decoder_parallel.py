"""A decoder under every strategy: the same causal-LM losses as one device, compiled once."""

import dataclasses

import jax
import numpy as np
import pytest

from jaxpretrain.tasks.causal_lm import CausalLM
from tests.decoder.helpers import GPT, packed_batches
from tests.parallel import runs

pytestmark = pytest.mark.xdist_group("decoder_strategy_runs")  # shares its module/session fixtures on one worker

STRATEGIES = runs.STRATEGIES  # 1 device, data=8, fsdp=8, data=2 x fsdp=2 x tensor=2, pmap over 8
OTHERS = [name for name in STRATEGIES if name != "1 device"]


@pytest.fixture(scope="module")
def decoder_runs():
  """Causal LM of a 1-layer, 32-wide GPT: 5 steps of 32 gpt-packed rows x 64 tokens per strategy."""
  config = runs.tiny_config()
  task = CausalLM(dataclasses.replace(runs.small_model(config), **GPT))
  batches = packed_batches(5, 32, 64, 512)
  return {name: runs.run(task, mesh, devices, batches, 64, config) for name, (mesh, devices) in STRATEGIES.items()}


@pytest.mark.parametrize("name", OTHERS)
def test_decoder_losses_agree_with_one_device(decoder_runs, name):
  reference, other = decoder_runs["1 device"].losses, decoder_runs[name].losses
  np.testing.assert_allclose(other, reference, rtol=1e-5, err_msg=f"{name} vs 1 device")
  assert len(set(np.round(reference, 6))) == 5  # the steps really differ: the weights moved


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_decoder_compiles_once(decoder_runs, name):
  assert decoder_runs[name].recompiles == 0


def test_decoder_states_agree_and_tensor_parallel_shards_heads(decoder_runs):
  reference = jax.device_get(decoder_runs["1 device"].state.params)
  tp = decoder_runs["jit data=2 fsdp=2 tensor=2"].state.params
  for name in OTHERS:
    np.testing.assert_allclose(
      jax.device_get(decoder_runs[name].state.params["encoder"]["final_norm"]["scale"]),
      reference["encoder"]["final_norm"]["scale"],
      rtol=1e-4,
      atol=1e-6,
    )
  query = tp["encoder"]["layer_0"]["attention"]["query"]["kernel"]
  assert tuple(query.sharding.spec) == ("fsdp", "tensor", None)
