"""Impossible layouts are one-line user errors naming the numbers, raised before any data is read."""

import jax
import pytest

from jaxpretrain import cli
from jaxpretrain import config as config_lib
from jaxpretrain.errors import UserError
from jaxpretrain.models.config import ModelConfig
from jaxpretrain.parallel import distributed
from jaxpretrain.parallel import strategy as strategy_lib
from jaxpretrain.tasks.classification import SequenceClassification

CASES = [
  (
    ["--config.mesh.data=2", "--config.mesh.fsdp=2"],
    "mesh: data=2 x fsdp=2 x tensor=1 = 4 devices, but 8 are available",
  ),
  (["--config.mesh.data=3"], "mesh: data=3 x fsdp=1 x tensor=1 = 3 devices, but 8 are available"),
  (["--config.mesh.tensor=3"], "mesh: 8 devices are not divisible by the fixed axes' product 3"),
  (
    ["--config.train.batch_size=12"],
    "train.batch_size=12 is not divisible by the data-parallel size 8 (mesh data=8 x fsdp=1)",
  ),
  (
    ["--config.mesh.fsdp=4", "--config.train.batch_size=6"],
    "train.batch_size=6 is not divisible by the data-parallel size 8 (mesh data=2 x fsdp=4)",
  ),
  (["--config.eval.batch_size=20"], "eval.batch_size=20 is not divisible by the data-parallel size 8"),
  (["--config.mesh.tensor=4"], "mesh.tensor=4 does not divide model.num_attention_heads=2"),
  (
    ["--config.mesh.tensor=8", "--config.model.num_attention_heads=8", "--config.model.intermediate_size=500"],
    "mesh.tensor=8 does not divide model.intermediate_size=500",
  ),
  (
    ["--config.mesh.strategy=pmap", "--config.mesh.fsdp=2"],
    "mesh.strategy=pmap replicates parameters: it needs mesh.fsdp=1 and mesh.tensor=1, got fsdp=2 tensor=1",
  ),
  (["--config.mesh.strategy=pmap", "--config.mesh.tensor=2", "--config.mesh.data=4"], "got fsdp=1 tensor=2"),
  (
    ["--config.mesh.strategy=pmap", "--config.train.batch_size=20"],
    "train.batch_size=20 is not divisible by the data-parallel size 8 (pmap over 8 devices)",
  ),
  (
    ["--config.mesh.strategy=pmap", "--config.train.grad_accum_steps=8"],
    "train.batch_size=32 gives 4 rows per device, not divisible by train.grad_accum_steps=8",
  ),
  (["--config.mesh.strategy=spmd"], "mesh.strategy='spmd'; choose jit or pmap"),
  (
    ["--config.mesh.rules=[['heads', 'model']]"],
    "mesh.rules: 'heads' maps to 'model', not a mesh axis (choose from data, fsdp, tensor)",
  ),
  (
    ["--coordinator_address=localhost:1", "--num_processes=2", "--process_id=2"],
    "--num_processes=2 and --process_id=2 do not describe a process of the run",
  ),
]


@pytest.mark.parametrize("flags,message", CASES, ids=[c[1][:40] for c in CASES])
def test_bad_layouts_exit_2_with_one_line(tmp_path, capsys, flags, message):
  workdir = tmp_path / "run"
  status = cli.main(["pretrain", "--config=configs/tiny.py", f"--workdir={workdir}", *flags])
  err = capsys.readouterr().err
  assert status == 2
  assert message in err
  assert err.count("\n") == 1 and "Traceback" not in err
  assert not workdir.exists()  # failed before preparing data or writing anything


def test_parameters_beyond_the_model_dims_are_checked_too():
  # Labels mapped to the tensor axis by a custom rule: 3 labels cannot split over 2 devices.
  mesh = config_lib.defaults().mesh
  mesh.tensor = 2
  mesh.rules = [r if r[0] != "labels" else ["labels", "tensor"] for r in mesh.rules]
  strategy = strategy_lib.create(mesh)
  task = SequenceClassification(
    ModelConfig(
      vocab_size=64,
      hidden_size=16,
      num_hidden_layers=1,
      num_attention_heads=2,
      intermediate_size=32,
      max_position_embeddings=16,
    ),
    num_labels=3,
  )
  with pytest.raises(
    UserError,
    match=r"mesh.tensor=2 does not divide the number of labels \(3\) "
    r"\(dimension 'labels' of head/classifier/bias\)",
  ):
    strategy.init_state(lambda p, r: p, lambda r: task.init(r, 16), jax.random.PRNGKey(0))


def test_no_distributed_flags_and_no_cluster_is_a_single_process_run(monkeypatch):
  for var in ("SLURM_NTASKS", "SLURM_STEP_NODELIST", "TPU_WORKER_HOSTNAMES"):
    monkeypatch.delenv(var, raising=False)
  assert distributed.detected_cluster() == ""
  distributed.initialize()
  assert jax.process_count() == 1
  monkeypatch.setenv("SLURM_NTASKS", "4")
  monkeypatch.setenv("SLURM_STEP_NODELIST", "node[001-002]")
  assert distributed.detected_cluster() == "slurm"


def test_auto_distributed_without_a_cluster_is_a_user_error(tmp_path, capsys, monkeypatch):
  for var in ("SLURM_NTASKS", "SLURM_STEP_NODELIST", "TPU_WORKER_HOSTNAMES"):
    monkeypatch.delenv(var, raising=False)
  status = cli.main(["pretrain", "--config=configs/tiny.py", f"--workdir={tmp_path}", "--coordinator_address=auto"])
  err = capsys.readouterr().err
  assert status == 2 and err.count("\n") == 1
  assert "jax.distributed.initialize failed" in err and "--coordinator_address=HOST:PORT" in err
