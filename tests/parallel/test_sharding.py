"""Parameters, optimizer state, batches and activations are laid out as the logical-axis rules say."""

import flax.linen as nn
import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from jaxpretrain import config as config_lib
from jaxpretrain.parallel import strategy as strategy_lib
from jaxpretrain.tasks.mlm import MaskedLM
from jaxpretrain.train.state import TrainState
from tests.parallel import runs
from tests.train.helpers import TINY

pytestmark = pytest.mark.xdist_group("strategy_runs")  # shares its module/session fixtures on one worker

MEGATRON = "jit data=2 fsdp=2 tensor=2"


def _spec(array):
  return tuple(array.sharding.spec) + (None,) * (array.ndim - len(array.sharding.spec))


def test_parameters_follow_the_rules_fsdp_and_megatron(pretrain_runs):
  params = pretrain_runs[MEGATRON].state.params
  layer = params["encoder"]["layer_0"]
  # Megatron: Q/K/V split by heads (column-parallel), the attention output by heads (row-parallel),
  # the MLP's first dense by its hidden width and the second by its input; ZeRO-3: "embed" over fsdp.
  assert _spec(layer["attention"]["query"]["kernel"]) == ("fsdp", "tensor", None)
  assert _spec(layer["attention"]["value"]["bias"]) == ("tensor", None)
  assert _spec(layer["attention"]["output"]["kernel"]) == ("tensor", None, "fsdp")
  assert _spec(layer["mlp"]["intermediate"]["kernel"]) == ("fsdp", "tensor")
  assert _spec(layer["mlp"]["output"]["kernel"]) == ("tensor", "fsdp")
  assert _spec(params["encoder"]["embeddings"]["word_embeddings"]["embedding"]) == ("tensor", "fsdp")
  assert _spec(layer["attention_norm"]["scale"]) == (None,)
  # Each device holds a quarter of a query kernel: half the rows (fsdp=2) and one of two heads.
  kernel = layer["attention"]["query"]["kernel"]
  assert kernel.addressable_shards[0].data.shape == (kernel.shape[0] // 2, kernel.shape[1] // 2, kernel.shape[2])


def test_optimizer_moments_are_sharded_like_their_parameters(pretrain_runs):
  state = pretrain_runs[MEGATRON].state
  moments = [
    (jax.tree_util.keystr(path), leaf)
    for path, leaf in jax.tree_util.tree_flatten_with_path(state.opt_state)[0]
    if "['layer_0']['mlp']['intermediate']['kernel']" in jax.tree_util.keystr(path)
  ]
  assert len(moments) == 2  # Adam's mu and nu
  for _, leaf in moments:
    assert _spec(leaf) == ("fsdp", "tensor")


def test_pmap_replicates_the_state(pretrain_runs):
  kernel = pretrain_runs["pmap over 8"].state.params["encoder"]["layer_0"]["attention"]["query"]["kernel"]
  assert kernel.sharding.is_fully_replicated and len(kernel.sharding.device_set) == 8


def test_fsdp_divides_the_train_state_over_devices(pretrain_runs):
  state = pretrain_runs["jit fsdp=8"].state
  leaves = jax.tree.leaves(state.arrays())
  total = sum(leaf.nbytes for leaf in leaves)
  per_device = {}
  for leaf in leaves:
    for shard in leaf.addressable_shards:
      per_device[shard.device] = per_device.get(shard.device, 0) + shard.data.nbytes
  assert len(per_device) == 8
  assert max(per_device.values()) <= 1.1 * total / 8, (max(per_device.values()), total)
  embedding = state.params["encoder"]["embeddings"]["word_embeddings"]["embedding"]
  assert _spec(embedding) == ("tensor", "fsdp")  # tensor has size 1 here
  assert embedding.addressable_shards[0].data.shape == (embedding.shape[0], embedding.shape[1] // 8)


def test_batches_split_over_data_and_fsdp_and_activations_over_tensor(pretrain_runs):
  run = pretrain_runs[MEGATRON]
  batch = run.strategy.put_batch(runs.mlm_batches(1, 32, 128, 4096)[0])
  assert batch["input_ids"].sharding.spec == P(("data", "fsdp"))
  assert batch["input_ids"].addressable_shards[0].data.shape == (8, 128)
  np.testing.assert_array_equal(np.asarray(batch["example_index"]), np.arange(32))
  with jax.set_mesh(run.strategy.mesh), nn.logical_axis_rules(run.strategy.rules):
    text = run.train_step.jitted.trace(run.state, batch, jax.random.PRNGKey(0)).lower().as_text()
  # Attention activations [batch, length, heads, head_dim] and MLP activations [batch, length, mlp]
  # are constrained to the tensor axis inside the step (the Megatron pattern), batch over data x fsdp.
  assert '[{"data", "fsdp"}, {}, {"tensor"}, {}]' in text
  assert '[{"data", "fsdp"}, {}, {"tensor"}]' in text


def test_fsdp_init_never_holds_the_whole_state_on_one_device():
  # The compiled initializer's per-device output and scratch memory, against the state's size:
  # a state built whole and then split would need at least all of it on some device.
  task = MaskedLM(TINY)
  mesh = config_lib.defaults().mesh
  mesh.data, mesh.fsdp = 1, 8
  strategy = strategy_lib.create(mesh)
  rng = jax.random.PRNGKey(0)
  program = strategy.init_program(TrainState.create(config_lib.defaults(), task, 10), lambda r: task.init(r, 32), rng)
  total = sum(np.prod(s.shape) * s.dtype.itemsize for s in jax.tree.leaves(jax.eval_shape(program, rng).arrays()))
  memory = program.lower(rng).compile().memory_analysis()
  assert memory.output_size_in_bytes + memory.temp_size_in_bytes < 0.5 * total
