"""`jaxpretrain finetune` ends with WORKDIR/report.md: the final metrics and the run's plots.

Training itself is covered elsewhere (tests/finetune/test_report.py checks the report of a real
fine-tune); here `loop.run` is replaced by one that writes a run's metrics.jsonl and returns its
summary, so the test checks the report in a second, and the report's pieces are checked one by one.
"""

import json
import os
import re

import numpy as np
import pytest

from jaxpretrain import cli
from jaxpretrain import config as config_lib
from jaxpretrain.commands import report
from jaxpretrain.data.finetune.features import label_counts
from jaxpretrain.tasks.classification import confusion_matrix, macro_f1, per_class_scores
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


def test_majority_baseline_is_the_most_frequent_training_labels_share_of_eval():
  info = {"label_counts": {"train": {"a": 3, "b": 5, "c": 5}, "eval": {"a": 2, "b": 1, "c": 7}}}
  # b and c tie in training: the first in label order wins, however rare it is in eval.
  assert report.majority_baseline(info) == {"label": "b", "train_count": 5, "train_total": 13, "accuracy": 0.1}
  assert report.majority_baseline({"label_counts": {"eval": {"a": 2}}}) is None  # evaluate reads no train split
  assert report.majority_baseline({}) is None


def test_label_counts_per_label_skip_unscored_word_pieces():
  names = ["O", "B-PER", "I-PER"]
  assert label_counts({"labels": np.array([[-100, 1, 2, -100], [0, 0, -100, -100]])}, names) == {
    "O": 2,
    "B-PER": 1,
    "I-PER": 1,
  }
  assert label_counts({"label": np.array([1, 1, 0])}, ["neg", "pos"]) == {"neg": 1, "pos": 2}
  assert label_counts(None, ["neg", "pos"]) == {"neg": 0, "pos": 0}  # no eval records
  assert label_counts({"start_positions": np.array([3])}, []) is None  # QA has no labels


def test_per_class_scores_from_a_masked_confusion_matrix():
  labels, predictions = np.array([0, 0, 0, 1, 1, 2, 1]), np.array([0, 1, 0, 1, 0, 2, 2])
  weights = np.array([1, 1, 1, 1, 1, 1, 0])  # the last row is padding
  confusion = np.asarray(confusion_matrix(labels, predictions, weights, 3))
  assert confusion.tolist() == [[2, 1, 0], [1, 1, 0], [0, 0, 1]] and confusion.sum() == weights.sum()
  scores = per_class_scores(confusion)
  assert scores["recall"] == pytest.approx([2 / 3, 1 / 2, 1.0])  # the diagonal over the row sums
  assert scores["precision"] == pytest.approx([2 / 3, 1 / 2, 1.0])  # the diagonal over the column sums
  assert scores["support"].tolist() == [3, 2, 1]
  assert scores["f1"].mean() == pytest.approx(float(macro_f1(confusion)))
  never_predicted = per_class_scores([[0, 2], [0, 3]])
  assert never_predicted["precision"].tolist() == [0.0, 0.6] and never_predicted["f1"][0] == 0.0


def test_checkpoint_lines_say_how_the_step_was_chosen():
  config = config_lib.defaults()
  config.eval.every_steps = 2
  best = {"metric": "accuracy", "mode": "max", "best": 4, "value": 0.875, "latest": 8}
  text = "\n".join(report.checkpoint_lines(best, config))
  assert "Best step: **4**, the highest eval.accuracy (eval.metric_mode=max)" in text
  assert "accuracy = 0.875; the latest is step 8." in text
  text = "\n".join(report.checkpoint_lines(dict(best, best=8), config))
  assert "Best step: **8**" in text and "the latest." in text
  config.eval.every_steps = 0
  text = "\n".join(report.checkpoint_lines({**best, "metric": "", "best": None}, config))
  assert "no best step was kept: the run's checkpoint is the latest, step 8." in text


def test_source_lines_name_the_hf_model_and_a_source_on_the_unigram_plateau():
  text = "\n".join(report.source_lines({"hf": "bert-base-uncased", "init_weights": True}))
  assert "Hugging Face model `bert-base-uncased` (its weights)" in text
  assert "Trained from scratch" in "\n".join(report.source_lines(None))
  source = {
    "path": "/runs/pre",
    "exists": True,
    "task": "mlm",
    "final_step": 1000,
    "init_step": 1000,
    "eval": {"loss": 6.1, "accuracy": 0.061},
    "eval_step": 1000,
    "unigram": {"token": "the", "accuracy": 0.06, "rows": 64, "tokens": 3000},
  }
  text = "\n".join(report.source_lines(source))
  assert "`/runs/pre` (mlm), its checkpoint step 1000 (its final step: 1000)" in text
  assert "| source run, step 1000 | 0.061 |" in text and "| unigram baseline: always `the` | 0.06 |" in text
  assert "**on the unigram plateau**" in text
  text = "\n".join(report.source_lines(dict(source, eval={"loss": 3.0, "accuracy": 0.4})))
  assert "plateau" not in text and "0.340 above it" in text


def test_source_run_of_an_hf_init_from(tmp_path):
  config = config_lib.defaults()
  config.init_from = "hf:/models/bert-tiny"
  assert report.source_run(config) == {"hf": "/models/bert-tiny", "init_weights": True}
  config.init_from = str(tmp_path / "gone")
  assert report.source_run(config) == {"path": str(tmp_path / "gone"), "exists": False}
