"""`jaxpretrain demo --small`: the whole pipeline end to end, writing well-formed results."""
import json
import os

import pytest

from jaxpretrain import cli
from jaxpretrain.demo import METHODS, targets


@pytest.mark.slow
def test_small_demo_writes_demo_json_report_and_plots(tmp_path, capsys):
  workdir = str(tmp_path / "demo")
  assert cli.main(["demo", "--workdir", workdir, "--small", "--config.train.progress=false"]) == 0
  captured = capsys.readouterr()
  with open(os.path.join(workdir, "demo.json")) as f:
    result = json.load(f)
  assert json.loads(captured.out.strip().splitlines()[-1]) == result
  assert set(result) == {"budgets", "accuracy", "std", "seeds"}
  assert result["budgets"] == [8, 16] and result["seeds"] == 3
  for key in ("accuracy", "std"):
    assert set(result[key]) == set(METHODS)
    for method in METHODS:
      assert set(result[key][method]) == {"8", "16"}
      assert all(0.0 <= v <= 1.0 for v in result[key][method].values())
  # 64 test examples: every mean is a multiple of 1/64 / 3 seeds.
  assert all(abs(v * 64 * 3 - round(v * 64 * 3)) < 1e-6 for m in METHODS for v in result["accuracy"][m].values())
  report = open(os.path.join(workdir, "report.md")).read()
  assert "| 16 |" in report and "accuracy_vs_labels.png" in report and "pretrain_loss.png" in report
  for claim, ok in targets(result).items():
    assert f"- {claim}: **{'yes' if ok else 'no'}**" in report
  for png in ("accuracy_vs_labels.png", "pretrain_loss.png"):
    with open(os.path.join(workdir, png), "rb") as f:
      assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  assert os.path.isdir(os.path.join(workdir, "pretrain", "checkpoints"))
  assert "[demo" in captured.err and "pretrain: done" in captured.err
