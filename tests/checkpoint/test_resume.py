"""Checkpoints you can trust: exact resume, preemption, resharding, corruption, non-finite values."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from jaxpretrain import checkpoint as checkpoint_lib
from jaxpretrain.parallel import strategy as strategy_lib
from jaxpretrain.train import loop
from tests.checkpoint import halves
from tests.run_configs import tiny_pretrain_config


@pytest.fixture(scope="module")
def small_epoch_data(tmp_path_factory):
  """A corpus so small that an epoch is a handful of steps, to resume across an epoch boundary."""
  from jaxpretrain.data.pretrain import prepare

  out = str(tmp_path_factory.mktemp("small") / "data")
  prepare.prepare(
    "embedded", out, seq_len=32, vocab_size=512, eval_fraction=0.2, embedded_documents=16, records_per_shard=50
  )
  return out


def test_two_halves_with_resume_equal_one_run_across_epoch_boundary(tmp_path, small_epoch_data):
  from jaxpretrain.data.pretrain import loader

  steps_per_epoch = loader.epoch_size(small_epoch_data, "train") // 8
  total = 2 * max(3, steps_per_epoch // 2 + 2)
  assert total > steps_per_epoch  # the run crosses an epoch boundary
  first = tiny_pretrain_config(small_epoch_data, **{"train.steps": total})
  first.checkpoint.every_steps = total // 2
  halves.assert_two_halves_equal_one_run(
    lambda: tiny_pretrain_config(small_epoch_data, **{"train.steps": total}), tmp_path, total, first_half=first
  )


def test_same_seed_same_curve_different_seed_different_curve(tmp_path, tiny_prepared):
  for name, seed in (("a", 0), ("b", 0), ("c", 1)):
    loop.run(tiny_pretrain_config(tiny_prepared, **{"train.steps": 4, "train.seed": seed}), str(tmp_path / name))
  assert halves.losses(tmp_path / "a") == halves.losses(tmp_path / "b")
  assert halves.losses(tmp_path / "a") != halves.losses(tmp_path / "c")


def test_sigterm_saves_exits_zero_and_resumes_exactly(tmp_path, tiny_prepared):
  steps = 40
  args = [
    sys.executable,
    "-m",
    "jaxpretrain.cli",
    "pretrain",
    "--config=configs/tiny.py",
    f"--workdir={tmp_path / 'run'}",
    "--config.model.num_hidden_layers=1",
    "--config.model.hidden_size=32",
    "--config.model.num_attention_heads=2",
    "--config.model.intermediate_size=64",
    "--config.model.vocab_size=512",
    "--config.model.max_position_embeddings=32",
    "--config.data.seq_len=32",
    f"--config.data.prepared_dir={tiny_prepared}",
    "--config.train.batch_size=8",
    f"--config.train.steps={steps}",
    "--config.train.log_every=1",
    "--config.train.progress=false",
    "--config.train.warmup_steps=2",
    "--config.eval.every_steps=0",
    "--config.eval.batches=1",
    "--config.checkpoint.every_steps=1000",
    "--config.data.prefetch=1",
  ]
  cwd = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
  metrics = tmp_path / "run" / "metrics.jsonl"
  deadline = time.time() + 120
  while time.time() < deadline and not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
    time.sleep(0.05)
  proc.send_signal(signal.SIGTERM)
  out, err = proc.communicate(timeout=120)
  assert proc.returncode == 0, err.decode()[-2000:]
  summary = json.loads(out.decode().strip().splitlines()[-1])
  assert summary["preempted"] and 3 <= summary["step"] < steps
  assert checkpoint_lib.Checkpointer(str(tmp_path / "run"), read_only=True).latest_step() == summary["step"]
  resumed = subprocess.run(args, cwd=cwd, capture_output=True, timeout=300)
  assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
  # The uninterrupted reference, in this process (same 8 fake devices).
  reference = tiny_pretrain_config(tiny_prepared, **{"train.steps": steps, "checkpoint.every_steps": 1000})
  loop.run(reference, str(tmp_path / "reference"))
  assert halves.losses(tmp_path / "run") == halves.losses(tmp_path / "reference")


def test_async_save_then_more_training_restores_the_saved_values(tmp_path, tiny_prepared):
  from jaxpretrain.tasks.mlm import MaskedLM
  from tests.train.helpers import TINY, make_state, mlm_batch

  strategy, state = make_state(MaskedLM(TINY))
  step = strategy.compile_train_step()
  batch = strategy.put_batch(mlm_batch())
  state, _ = step(state, batch, jax.random.PRNGKey(0))
  saved = jax.tree.map(np.asarray, jax.device_get(state.arrays()))
  ckpt = checkpoint_lib.Checkpointer(str(tmp_path), async_save=True)
  ckpt.save(1, state.arrays(), data_state={"pos": 1})
  for i in range(3):  # donates the state's buffers while the write may still be running
    state, _ = step(state, batch, jax.random.PRNGKey(i + 1))
  ckpt.wait()
  abstract = checkpoint_lib.abstract_arrays(state.arrays(), strategy.state_shardings.arrays())
  arrays, data_state, _ = ckpt.restore(1, abstract)
  ckpt.close()
  assert data_state == {"pos": 1}
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), b), arrays, saved)
  leaves, saved_leaves = jax.tree.leaves(arrays), jax.tree.leaves(saved)
  assert [x.dtype for x in leaves] == [x.dtype for x in saved_leaves]
  assert all(x.sharding == s for x, s in zip(leaves, jax.tree.leaves(strategy.state_shardings.arrays())))


def test_reshard_8_to_4x2_to_1(tmp_path):
  import flax.linen as nn

  from jaxpretrain import config as config_lib
  from jaxpretrain.tasks.mlm import MaskedLM
  from tests.train.helpers import TINY, make_state

  task = MaskedLM(TINY)
  _, state = make_state(task)  # saved as data=8
  saved = jax.tree.map(np.asarray, jax.device_get(state.arrays()))
  ckpt = checkpoint_lib.Checkpointer(str(tmp_path), async_save=False)
  ckpt.save(1, state.arrays())
  ckpt.wait()
  logical = nn.get_partition_spec(jax.eval_shape(lambda r: task.init(r, 32), jax.random.PRNGKey(0)))
  for data, fsdp, devices in ((4, 2, None), (1, 1, jax.devices()[:1])):
    mesh_config = config_lib.defaults().mesh
    mesh_config.data, mesh_config.fsdp = data, fsdp
    strategy = strategy_lib.JitStrategy(mesh_config, devices)
    shardings = strategy.shardings_for(state, logical)
    arrays, _, _ = ckpt.restore(1, checkpoint_lib.abstract_arrays(state.arrays(), shardings.arrays()))
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), b), arrays, saved)
    kernel = arrays["params"]["encoder"]["layer_0"]["mlp"]["intermediate"]["kernel"]
    assert dict(kernel.sharding.mesh.shape) == dict(data=data, fsdp=fsdp, tensor=1)
    assert len(kernel.sharding.device_set) == (8 if devices is None else 1)
    if fsdp == 2:
      assert kernel.sharding.spec[0] == "fsdp"
  ckpt.close()
