"""report.md of a real fine-tune from the session's pretraining run, and its rewrite by `evaluate`.

One 6-step classification fine-tune (eval and checkpoints every 2 steps, all three kept) serves
every test; each number the report states is recomputed here from the run's files. The eval split
(14 examples) does not fill its last batch: the padding rows must count nowhere.
"""

import json
import math
import os
import re
import shutil

import numpy as np
import pytest

from jaxpretrain import checkpoint as checkpoint_lib
from jaxpretrain import cli
from jaxpretrain.data.pretrain import loader
from jaxpretrain.data.tokenizer import Tokenizer
from jaxpretrain.train.metrics import read_metrics

EVAL = 14
FINETUNE = [
  "--config=finetune_tiny",
  "--config.train.num_epochs=0",
  "--config.train.steps=6",
  "--config.train.batch_size=8",
  "--config.train.learning_rate=1e-3",
  "--config.train.warmup_steps=1",
  "--config.train.log_every=2",
  "--config.train.progress=false",
  "--config.eval.every_steps=2",
  "--config.checkpoint.every_steps=2",
  "--config.checkpoint.keep=3",
  "--config.data.train_examples=32",
  f"--config.data.eval_examples={EVAL}",  # two batches of 8, the second with 2 padding rows
  "--config.data.seq_len=32",
]


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory, pretrained):
  """The workdir of the fine-tune (init_from the session's 4-step MLM run), report.md written."""
  workdir = str(tmp_path_factory.mktemp("report") / "ft")
  assert cli.main(["finetune", *FINETUNE, f"--workdir={workdir}", f"--config.init_from={pretrained}"]) == 0
  return workdir


def _read(path):
  with open(path) as f:
    return f.read()


def _section(report: str, heading: str) -> str:
  return report.split(f"## {heading}")[1].split("\n## ")[0]


def _confusion_table(section: str) -> tuple[list[str], np.ndarray]:
  """(label names, counts) of the report's markdown confusion matrix."""
  lines = section.split("| true \\ predicted |")[1].splitlines()
  names = [c.strip() for c in lines[0].strip(" |").split("|")]
  rows = [[int(c) for c in line.strip(" |").split("|")[1:]] for line in lines[2 : 2 + len(names)]]
  return names, np.array(rows)


def _per_class(section: str) -> dict[str, list[float]]:
  rows = re.findall(r"^\| (\w+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| (\d+) \|$", section, re.M)
  return {r[0]: [float(x) for x in r[1:]] for r in rows}


def _unigram(pretrained: str) -> tuple[str, float]:
  """The most frequent real, non-special token of the source's eval rows (1 batch of 8) and its share."""
  prepared = json.loads(_read(os.path.join(pretrained, "data_info.json")))["prepared_dir"]
  rows = next(iter(loader.make_dataset(prepared, "eval", global_batch_size=8, seed=0, shuffle=False)))
  tokenizer = Tokenizer.load(os.path.join(pretrained, "tokenizer"))
  ids = rows["input_ids"][(rows["segment_ids"] != 0) & ~np.isin(rows["input_ids"], tokenizer.all_special_ids)]
  counts = np.bincount(ids)
  return tokenizer.hf.convert_ids_to_tokens(int(counts.argmax())), counts.max() / ids.size


def test_report_names_the_source_run_and_its_unigram_baseline(finetuned, pretrained):
  section = _section(_read(os.path.join(finetuned, "report.md")), "Initialization")
  assert f"pretraining run `{pretrained}` (mlm), its checkpoint step 4 (its final step: 4)" in section
  last_eval = [r for r in read_metrics(pretrained) if r.get("split") == "eval"][-1]
  assert f"Its last evaluation (step {last_eval['step']})" in section
  assert f"| accuracy | {last_eval['accuracy']:.4g} |" in section and f"| loss | {last_eval['loss']:.4g} |" in section
  token, share = _unigram(pretrained)
  assert f"| source run, step 4 | {last_eval['accuracy']:.4g} |" in section
  assert f"| unigram baseline: always `{token}` | {share:.4g} |" in section
  plateau = last_eval["accuracy"] < share + 0.01  # a 4-step MLM run has not left it
  assert ("**on the unigram plateau**" in section) == plateau


def test_report_counts_labels_per_split_and_beats_or_names_the_majority_baseline(finetuned):
  report = _read(os.path.join(finetuned, "report.md"))
  info = json.loads(_read(os.path.join(finetuned, "data_info.json")))
  train, evals = info["label_counts"]["train"], info["label_counts"]["eval"]
  assert list(train) == list(evals) == info["label_names"] == ["negative", "positive"]
  assert sum(train.values()) == info["train_examples"] == 32 and sum(evals.values()) == info["eval_examples"] == EVAL
  data = _section(report, "Data")
  assert "| train | `embedded` | 32 |" in data and f"| eval | `embedded` | {EVAL} |" in data
  for name in info["label_names"]:
    assert f"| {name} | {train[name]} ({train[name] / 32:.1%}) | {evals[name]} ({evals[name] / EVAL:.1%}) |" in data

  majority = max(info["label_names"], key=lambda n: train[n])  # first of equals
  baseline = evals[majority] / EVAL  # the majority label's share of the eval split
  section = _section(report, "Accuracy against the majority-class baseline")
  assert (
    f"| majority class: always `{majority}` ({train[majority]} of 32 training labels) | {baseline:.4g} |" in section
  )
  final = [r for r in read_metrics(finetuned) if r.get("split") == "eval"][-1]
  assert final["step"] == 6 and f"| model, final evaluation (step 6) | {final['accuracy']:.4g} |" in section
  assert ("**not above the majority-class baseline**" in section) == (final["accuracy"] <= baseline)


def test_report_states_the_best_step_by_eval_metric(finetuned):
  report = _read(os.path.join(finetuned, "report.md"))
  kept = [r["step"] for r in checkpoint_lib.describe(finetuned)]
  assert kept == [2, 4, 6]
  accuracy = {r["step"]: r["accuracy"] for r in read_metrics(finetuned) if r.get("split") == "eval"}
  best = max(kept, key=lambda s: (accuracy[s], s))  # ties go to the later step
  section = _section(report, "Checkpoint")
  assert f"Best step: **{best}**, the highest eval.accuracy (eval.metric_mode=max)" in section
  assert f"accuracy = {accuracy[best]:.4g}" in section
  assert ("the latest." in section) == (best == 6)
  assert f"## Evaluation of step {best} (best by eval.accuracy)" in report


def test_report_per_class_scores_come_from_the_confusion_matrix(finetuned):
  report = _read(os.path.join(finetuned, "report.md"))
  info = json.loads(_read(os.path.join(finetuned, "data_info.json")))
  heading = next(line[3:] for line in report.splitlines() if line.startswith("## Evaluation of step"))
  section = _section(report, heading)
  names, confusion = _confusion_table(section)
  assert names == info["label_names"]
  assert confusion.sum() == EVAL  # every eval example once; the padding rows of the last batch not at all
  assert dict(zip(names, confusion.sum(axis=1).tolist())) == info["label_counts"]["eval"]
  accuracy = float(re.search(r"^\| accuracy \| ([\d.e-]+) \|$", section, re.M).group(1))
  assert math.isclose(accuracy, np.trace(confusion) / EVAL, rel_tol=1e-3)
  per_class = _per_class(section)
  for i, name in enumerate(names):
    precision, recall, f1, support = per_class[name]
    row, column = confusion[i].sum(), confusion[:, i].sum()
    assert support == row
    assert recall == round(confusion[i, i] / row if row else 0.0, 4)
    assert precision == round(confusion[i, i] / column if column else 0.0, 4)
    assert f1 == round(2 * confusion[i, i] / (row + column) if row + column else 0.0, 4)
  assert "![confusion](plots/confusion.png)" in section
  assert _read_bytes(os.path.join(finetuned, "plots", "confusion.png"))[:4] == b"\x89PNG"


def _read_bytes(path):
  with open(path, "rb") as f:
    return f.read()


def test_metrics_rows_and_checkpoints_stay_scalar(finetuned):
  for row in read_metrics(finetuned):
    assert all(isinstance(v, (int, float, str)) for v in row.values()), row
  for r in checkpoint_lib.describe(finetuned):
    assert set(r["metrics"]) == {"loss", "accuracy", "macro_f1", "mcc", "f1"}  # two classes: f1 of class 1
    assert all(isinstance(v, float) for v in r["metrics"].values())


def test_evaluate_rewrites_the_report_with_a_best_step_that_is_not_the_latest(finetuned, tmp_path, capsys):
  workdir = str(tmp_path / "ft")
  shutil.copytree(finetuned, workdir)
  meta_path = os.path.join(workdir, "checkpoints", "2", "meta", "metadata")
  meta = json.loads(_read(meta_path))
  meta["metrics"]["accuracy"] = 2.0  # above any real accuracy: step 2 becomes the best
  with open(meta_path, "w") as f:
    json.dump(meta, f)
  capsys.readouterr()
  assert cli.main(["evaluate", "--workdir", workdir]) == 0
  result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert result == json.loads(_read(os.path.join(workdir, "eval.json")))
  assert result["step"] == 2 and result["checkpoint"] == "best" and result["label_names"] == ["negative", "positive"]
  assert np.sum(result["confusion"]) == result["examples"] == EVAL
  assert math.isclose(result["accuracy"], np.trace(result["confusion"]) / EVAL, rel_tol=1e-6)

  report = _read(os.path.join(workdir, "report.md"))
  assert "Best step: **2**, the highest eval.accuracy" in report and "the latest is step 6." in report
  section = _section(report, "Evaluation of step 2 (best by eval.accuracy)")
  assert _confusion_table(section)[1].tolist() == result["confusion"]
  assert f"| model, evaluated checkpoint (step 2) | {result['accuracy']:.4g} |" in report
  assert "final step 6." in report and "## Final evaluation" in report  # from metrics.jsonl's last rows


def test_evaluate_of_a_pretraining_run_writes_no_report(pretrained, tmp_path, capsys):
  workdir = str(tmp_path / "pre")
  shutil.copytree(pretrained, workdir)
  assert cli.main(["evaluate", "--workdir", workdir]) == 0
  assert "confusion" not in json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert not os.path.exists(os.path.join(workdir, "report.md"))
