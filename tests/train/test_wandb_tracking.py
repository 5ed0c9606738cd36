"""`tracking.wandb=true` in W&B's offline mode: the rows of metrics.jsonl, the config, one run across a resume."""

import json
import struct
import sys

import pytest

from jaxpretrain.cli import main
from jaxpretrain.train import loop
from jaxpretrain.train.metrics import read_metrics
from tests.run_configs import tiny_pretrain_config

wandb = pytest.importorskip("wandb")  # the [wandb] extra (in [test])


def wandb_records(path):
  """The protobuf records of an offline run's `run-ID.wandb` file: a ":W&B" header, then
  LevelDB-log blocks of 32 KiB whose chunks carry 7-byte headers (crc, length, type)."""
  from wandb.proto import wandb_internal_pb2

  data = path.read_bytes()
  assert data[:4] == b":W&B"
  pos, block, parts = 7, 32768, []
  while pos + 7 <= len(data):
    if block - pos % block < 7:  # a block's tail too short for a header is padding
      pos += block - pos % block
      continue
    _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
    parts.append(data[pos + 7 : pos + 7 + length])
    pos += 7 + length
    if kind in (1, 4):  # a full record, or the last chunk of one
      record = wandb_internal_pb2.Record()
      record.ParseFromString(b"".join(parts))
      parts = []
      yield record


def offline_run(wandb_dir, run_id):
  """(history rows {key: value} with their step, config {key: value}) of each offline run of `run_id`, in order."""
  runs = []
  for path in sorted(wandb_dir.glob(f"wandb/offline-run-*-{run_id}/run-{run_id}.wandb")):
    rows, config = [], {}
    for record in wandb_records(path):
      kind = record.WhichOneof("record_type")
      if kind == "history":
        items = record.history.item  # a key is in `key`, or (a name with "/") in `nested_key`
        rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in items})
      elif kind == "run":
        assert record.run.run_id == run_id and record.run.project == "obs-test"
        config.update({item.key: json.loads(item.value_json) for item in record.run.config.update})
      elif kind == "config":
        config.update({item.key: json.loads(item.value_json) for item in record.config.update})
    runs.append((rows, config))
  return runs


def _config(prepared, steps):
  return tiny_pretrain_config(
    prepared, **{"train.steps": steps, "tracking.wandb": True, "tracking.project": "obs-test", "tracking.name": "tiny"}
  )


def test_offline_run_holds_the_rows_and_config_and_a_resume_continues_it(tmp_path, tiny_prepared, monkeypatch):
  monkeypatch.setenv("WANDB_MODE", "offline")
  monkeypatch.setenv("WANDB_DIR", str(tmp_path))
  monkeypatch.setenv("WANDB_SILENT", "true")
  workdir = tmp_path / "run"
  loop.run(_config(tiny_prepared, 4), str(workdir))
  run_id = (workdir / "wandb_run_id").read_text().strip()
  loop.run(_config(tiny_prepared, 6), str(workdir))  # resumes from step 4 (the checkpoint) up to 6
  assert (workdir / "wandb_run_id").read_text().strip() == run_id
  runs = offline_run(tmp_path, run_id)
  assert len(runs) == 2  # both attempts logged to the one run id
  (first_rows, first_config), (second_rows, second_config) = runs
  assert first_config["train"]["steps"] == 4 and second_config["train"]["steps"] == 6
  assert first_config["tracking"]["wandb"] is True and first_config["model"]["hidden_size"] == 32
  logged = {}
  for row in first_rows + second_rows:
    for key, value in row.items():
      if not key.startswith("_"):
        logged[(row["_step"], key)] = value
  expected = {}
  for row in read_metrics(str(workdir)):
    prefix = row.get("split", "train")
    for key, value in row.items():
      if key not in ("step", "split"):
        expected[(row["step"], f"{prefix}/{key}")] = value
  assert logged == pytest.approx(expected)
  assert {step for step, _ in logged} == {1, 2, 3, 4, 5, 6}
  assert {row["_step"] for row in second_rows} == {5, 6}  # the resumed attempt appended after step 4


def test_without_wandb_installed_it_is_a_one_line_error(tmp_path, capsys, monkeypatch):
  monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
  workdir = tmp_path / "run"
  code = main(["pretrain", "--config=configs/tiny.py", f"--workdir={workdir}", "--config.tracking.wandb=true"])
  err = capsys.readouterr().err.strip().splitlines()
  assert code == 2 and len(err) == 1
  assert 'tracking.wandb=true needs the wandb package: pip install "jaxpretrain[wandb]"' in err[0]
  assert not workdir.exists()


def test_a_wandb_run_that_cannot_start_is_a_one_line_error_and_frees_the_workdir(tmp_path, tiny_prepared, monkeypatch):
  def refuse(**kwargs):
    raise wandb.errors.CommError("Network error (ConnectionError), entering retry loop.")

  monkeypatch.setattr(wandb, "init", refuse)
  workdir = str(tmp_path / "run")
  with pytest.raises(Exception) as failure:
    loop.run(_config(tiny_prepared, 2), workdir)
  message = str(failure.value)
  assert type(failure.value).__name__ == "UserError" and "\n" not in message
  assert message.startswith("tracking.wandb: could not start W&B run") and "Network error" in message
  monkeypatch.undo()  # the next run (offline) starts and trains: nothing kept the workdir locked
  monkeypatch.setenv("WANDB_MODE", "offline")
  monkeypatch.setenv("WANDB_DIR", str(tmp_path))
  assert loop.run(_config(tiny_prepared, 2), workdir)["step"] == 2
