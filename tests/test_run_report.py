"""`jaxpretrain finetune` ends with WORKDIR/report.md: the final metrics and the run's plots.

Training itself is covered elsewhere; here `loop.run` is replaced by one that writes a run's
metrics.jsonl and returns its summary, so the test checks the report in a second.
"""

import json
import os
import re

import pytest

from jaxpretrain import cli
from jaxpretrain.train import loop

SUMMARY = {
  "step": 4,
  "preempted": False,
  "train": {"loss": 0.61, "learning_rate": 2e-4},
  "eval": {"loss": 0.5, "accuracy": 0.8125, "macro_f1": 0.79},
}


@pytest.fixture
def fake_run(monkeypatch):
  def run(config, workdir):
    os.makedirs(workdir, exist_ok=True)
    rows = [{"step": s, "loss": 1.0 / s, "learning_rate": 1e-4 * s, "tokens_per_s": 100.0} for s in (1, 2, 3, 4)]
    rows.append({"step": 4, "split": "eval", **SUMMARY["eval"]})
    with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
      f.write("".join(json.dumps(r) + "\n" for r in rows))
    return dict(SUMMARY)

  monkeypatch.setattr(loop, "run", run)


def test_finetune_writes_report_with_final_eval_and_plots(tmp_path, capsys, fake_run):
  workdir = str(tmp_path / "ft")
  assert cli.main(["finetune", "--config=finetune_tiny", "--workdir", workdir]) == 0
  summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert summary["report"] == os.path.join(workdir, "report.md")
  with open(summary["report"]) as f:
    report = f.read()
  assert "final step 4." in report
  section = report.split("## Final evaluation")[1].split("##")[0]
  assert dict(re.findall(r"^\| (\w+) \| ([-\d.e]+) \|", section, re.M)) == {
    "accuracy": "0.8125",
    "loss": "0.5",
    "macro_f1": "0.79",
  }
  images = re.findall(r"!\[\w+\]\((plots/\w+\.png)\)", report)
  assert images == ["plots/loss.png", "plots/learning_rate.png", "plots/throughput.png", "plots/eval.png"]
  for image in images:
    with open(os.path.join(workdir, image), "rb") as f:
      assert f.read(4) == b"\x89PNG"


def test_pretrain_leaves_reports_to_the_demo(tmp_path, capsys, fake_run):
  workdir = str(tmp_path / "pre")
  assert cli.main(["pretrain", "--config=tiny", "--workdir", workdir]) == 0
  assert "report" not in json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert not os.path.exists(os.path.join(workdir, "report.md"))
