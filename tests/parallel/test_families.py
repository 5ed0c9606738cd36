"""ModernBERT (MLM and classification) and Llama (causal LM, grouped-query attention, scanned
layers) under every strategy: the same losses as one device, compiled once; key/value heads shard
over the tensor axis where they divide it and stay whole where they do not."""

import dataclasses

import jax
import numpy as np
import pytest

from jaxpretrain.tasks.causal_lm import CausalLM
from jaxpretrain.tasks.classification import SequenceClassification
from jaxpretrain.tasks.mlm import MaskedLM
from tests.decoder.helpers import packed_batches
from tests.models import family_configs
from tests.parallel import runs

pytestmark = [
  pytest.mark.xdist_group("family_strategy_runs"),  # shares its module fixtures on one worker
  pytest.mark.starts_first,  # 15 strategy runs: CPU-minutes
]

OTHERS = [name for name in runs.STRATEGIES if name != "1 device"]
MODERNBERT = family_configs.modernbert()
LLAMA = family_configs.llama(scan_layers=True)


def _runs(task, batches, seq_len):
  config = runs.tiny_config()
  return {name: runs.run(task, mesh, n, batches, seq_len, config) for name, (mesh, n) in runs.STRATEGIES.items()}


@pytest.fixture(scope="module")
def family_runs():
  return {
    "modernbert mlm": _runs(MaskedLM(MODERNBERT, mask_prob=0.3), runs.mlm_batches(5, 32, 64, 512), 64),
    "modernbert classification": _runs(
      SequenceClassification(MODERNBERT, num_labels=3, dropout=0.0, pooling="mean"),
      runs.classification_batches(5, 32, 64, 512, 3),
      64,
    ),
    "llama causal lm": _runs(CausalLM(LLAMA), packed_batches(5, 32, 64, 512), 64),
  }


@pytest.mark.parametrize("run", ["modernbert mlm", "modernbert classification", "llama causal lm"])
@pytest.mark.parametrize("name", OTHERS)
def test_losses_agree_with_one_device(family_runs, run, name):
  reference, other = family_runs[run]["1 device"].losses, family_runs[run][name].losses
  np.testing.assert_allclose(other, reference, rtol=1e-5, err_msg=f"{run}: {name} vs 1 device")
  assert len(set(np.round(reference, 6))) == 5  # the steps really differ: the weights moved


@pytest.mark.parametrize("name", list(runs.STRATEGIES))
def test_no_recompilation_after_the_first_step(family_runs, name):
  for run in family_runs.values():
    assert run[name].recompiles == 0


def test_tensor_parallel_shards_query_and_key_value_heads(family_runs):
  tp = family_runs["llama causal lm"]["jit data=2 fsdp=2 tensor=2"].state.params["encoder"]["layers"]["block"]
  assert tuple(tp["attention"]["query"]["kernel"].sharding.spec) == (None, "fsdp", "tensor", None)
  assert tuple(tp["attention"]["key"]["kernel"].sharding.spec) == (None, "fsdp", "tensor", None)
  reference = jax.device_get(family_runs["llama causal lm"]["1 device"].state.params)
  for name in OTHERS:
    params = jax.device_get(family_runs["llama causal lm"][name].state.params)
    np.testing.assert_allclose(
      params["head"]["output_embedding"], reference["head"]["output_embedding"], rtol=1e-4, atol=1e-6
    )


def test_key_value_heads_that_do_not_divide_the_tensor_axis_are_replicated():
  mqa = dataclasses.replace(LLAMA, num_key_value_heads=1, scan_layers=False)  # multi-query: one KV head
  run = runs.run(CausalLM(mqa), dict(data=4, tensor=2), 8, packed_batches(2, 8, 16, 512), 16, runs.tiny_config())
  rules = dict(run.strategy.rules)
  assert rules["kv_heads"] is None and rules["act_kv_heads"] is None and rules["heads"] == "tensor"
  attention = run.state.params["encoder"]["layer_0"]["attention"]
  assert tuple(attention["key"]["kernel"].sharding.spec) in ((None, None, None), ("fsdp", None, None))
  assert tuple(attention["query"]["kernel"].sharding.spec)[1] == "tensor"
  assert np.all(np.isfinite(run.losses))
