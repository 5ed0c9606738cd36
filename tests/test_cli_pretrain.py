"""`jaxpretrain pretrain` end to end with configs/tiny.py, and its one-line errors."""

import json
import os

import pytest

from jaxpretrain.cli import main


def test_pretrain_tiny_end_to_end(tmp_path, capsys):
  workdir = tmp_path / "run"
  code = main(
    [
      "pretrain",
      "--config=configs/tiny.py",
      f"--workdir={workdir}",
      "--config.train.progress=false",
      "--config.data.embedded_documents=3000",
      "--config.data.eval_fraction=0.05",
    ]
  )
  assert code == 0, capsys.readouterr().err
  rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  train = [r for r in rows if "split" not in r]
  evals = [r for r in rows if r.get("split") == "eval"]
  assert [r["step"] for r in train] == [5, 10, 15, 20, 25, 30]
  for row in train:
    assert {"step", "loss", "learning_rate", "tokens_per_s", "accuracy", "grad_norm"} <= set(row)
    assert row["tokens_per_s"] > 0
  assert train[-1]["loss"] < train[0]["loss"] - 1.0  # the loss clearly drops
  assert [r["step"] for r in evals] == [15, 30] and evals[-1]["loss"] < evals[0]["loss"]
  assert json.loads((workdir / "config.json").read_text())["train"]["steps"] == 30
  assert sorted(os.listdir(workdir / "checkpoints")) == ["15", "30"]
  assert (workdir / "tokenizer" / "tokenizer.json").exists() and list((workdir / "tb").iterdir())
  assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["step"] == 30


@pytest.mark.parametrize(
  "override,message",
  [
    ("--config.train.stepz=3", "unknown config key: train.stepz"),
    ("--config.data.seq_len=1024", "data.seq_len=1024 exceeds the model's 128 positions"),
    ("--config.train.batch_size=12", "train.batch_size=12 is not divisible by the data-parallel size 8"),
    ("--config.data.train=/nonexistent/corpus.txt", "/nonexistent/corpus.txt"),
  ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, override, message):
  workdir = tmp_path / "run"
  code = main(["pretrain", "--config=configs/tiny.py", f"--workdir={workdir}", override])
  err = capsys.readouterr().err.strip().splitlines()
  assert code == 2
  assert len(err) == 1 and err[0].startswith("jaxpretrain: error:") and message in err[0]
  assert not (workdir / "config.json").exists() and not (workdir / "checkpoints").exists()
