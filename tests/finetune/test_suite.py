"""`jaxpretrain suite`: GLUE-schema tasks fine-tuned and scored end to end, from tiny saved DatasetDicts.

One run of three tasks (MRPC: two classes, main metric F1; STS-B: regression; MNLI: three classes and
two eval splits) from the session's tiny pretraining run, shared by the tests here: its scores are
scikit-learn's / scipy's on the saved predictions, the predictions are those of the checkpoint the
main metric picked, suite.md is the GLUE table, a second run trains nothing, and the STS-B run
exports as a regression `BertForSequenceClassification` that scores the same.
"""

import json
import os

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from jaxpretrain import cli
from jaxpretrain.data.readers import embedded
from jaxpretrain.tasks import suites
from jaxpretrain.train import loop
from tests.finetune.helpers import MODEL

datasets = pytest.importorskip("datasets")
pytestmark = pytest.mark.xdist_group("suite")  # one worker runs the suite once

TASKS = ("mrpc", "stsb", "mnli")
OVERRIDES = [
  "--config.train.num_epochs=0",
  "--config.train.steps=4",
  "--config.train.batch_size=8",
  "--config.train.learning_rate=1e-3",
  "--config.train.progress=false",
  "--config.data.seq_len=32",
  "--config.eval.every_steps=2",
  "--config.checkpoint.every_steps=2",
  "--config.checkpoint.async_save=false",
]
assert MODEL["model.max_position_embeddings"] >= 32


def _pairs(n: int, offset: int) -> dict:
  texts = [e["text"] for e in embedded.labeled_examples("train", 200, 0)]
  return {"a": texts[offset : offset + n], "b": texts[offset + 100 : offset + 100 + n]}


def glue_like(name: str) -> "datasets.DatasetDict":
  """A tiny DatasetDict with the real GLUE schema of `name`: its column names and label feature, an
  `idx`, and its splits (test unlabeled, -1)."""
  task = suites.SUITES["glue"][name]
  label = {
    "mrpc": datasets.ClassLabel(names=["not_equivalent", "equivalent"]),
    "stsb": datasets.Value("float32"),
    "mnli": datasets.ClassLabel(names=["entailment", "neutral", "contradiction"]),
  }[name]
  features = datasets.Features(
    {task.text_column: datasets.Value("string"), task.text_pair_column: datasets.Value("string")}
    | {"label": label, "idx": datasets.Value("int32")}
  )
  sizes = {"train": 40, **{split: 12 + 2 * i for i, split in enumerate(task.eval_splits.values())}, "test": 6}
  parts, offset = {}, 0
  for split, n in sizes.items():
    pairs = _pairs(n, offset)
    offset += n
    if split == "test":
      labels = [-1] * n
    elif task.num_labels == 1:
      labels = [round((i * 7 % 11) / 2, 1) for i in range(n)]  # scores 0..5
    else:
      labels = [i % task.num_labels for i in range(n)]
    columns = {task.text_column: pairs["a"], task.text_pair_column: pairs["b"], "label": labels, "idx": list(range(n))}
    parts[split] = datasets.Dataset.from_dict(columns, features=features)
  return datasets.DatasetDict(parts)


@pytest.fixture(scope="module")
def glue_data(tmp_path_factory):
  root = tmp_path_factory.mktemp("glue-data")
  datasets.disable_progress_bars()
  for name in TASKS:
    glue_like(name).save_to_disk(str(root / name))
  return str(root)


def _suite(workdir, init_from, data_dir, *extra):
  return cli.main(
    ["suite", "--suite=glue", f"--init_from={init_from}", f"--workdir={workdir}", f"--data_dir={data_dir}", *extra]
  )


@pytest.fixture(scope="module")
def glue_suite(tmp_path_factory, pretrained, glue_data):
  """The suite's workdir after `jaxpretrain suite --tasks=mrpc,stsb,mnli`."""
  workdir = str(tmp_path_factory.mktemp("suite"))
  with pytest.MonkeyPatch.context() as mp:  # no test reaches the Hub
    mp.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    mp.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    assert _suite(workdir, pretrained, glue_data, f"--tasks={','.join(TASKS)}", *OVERRIDES) == 0
  return workdir


def _json(path):
  with open(path) as f:
    return json.load(f)


def _eval_rows(run_dir):
  with open(os.path.join(run_dir, "metrics.jsonl")) as f:
    return [r for r in map(json.loads, f) if r.get("split") == "eval"]


def test_scores_are_sklearns_on_the_predictions_of_the_best_checkpoint(glue_suite, glue_data):
  result = _json(os.path.join(glue_suite, "suite.json"))
  assert list(result["tasks"]) == ["mrpc", "stsb", "mnli"]  # table order
  assert result["model"] == os.path.basename(result["init_from"])
  expected = {
    "mrpc": lambda p, y: {"f1": skm.f1_score(y, p), "accuracy": skm.accuracy_score(y, p)},
    "stsb": lambda p, y: {"pearson": stats.pearsonr(p, y)[0], "spearman": stats.spearmanr(p, y)[0]},
    "mnli": lambda p, y: {"accuracy": skm.accuracy_score(y, p)},
  }
  for name, outcome in result["tasks"].items():
    task, run_dir = suites.SUITES["glue"][name], os.path.join(glue_suite, name)
    saved = _json(os.path.join(run_dir, "predictions.json"))
    assert set(saved) == set(outcome["metrics"]) == set(task.eval_splits)
    for split_name, split in task.eval_splits.items():
      gold = datasets.load_from_disk(os.path.join(glue_data, name, split))["label"]
      predictions, labels = np.array(saved[split_name]["predictions"]), np.array(saved[split_name]["labels"])
      np.testing.assert_allclose(labels, gold, rtol=1e-6)  # every example once, in order, no padding rows
      for metric, value in expected[name](predictions, labels).items():
        assert outcome["metrics"][split_name][metric] == pytest.approx(value, abs=1e-6), (name, metric)
    assert outcome["train_examples"] == 40 and outcome["seconds"] > 0 and outcome["checkpoint"] == "best"
    # The checkpoint is the best eval row by the task's main metric (the latest among equals), and
    # the in-loop metric of that row, from summed eval aux, is the official one on its predictions.
    rows = _eval_rows(run_dir)
    assert {r["step"] for r in rows} == {2, 4}
    best = max(rows, key=lambda r: (r[task.main], r["step"]))
    first_split = next(iter(task.eval_splits))
    assert outcome["best_step"] == best["step"]
    # The tiny STS-B model's scores vary by ~1e-5 about their mean: float32 rounding, which differs
    # between the compiled eval step and predict, moves r in the third decimal there.
    tolerance = 0.02 if task.num_labels == 1 else 1e-6
    assert best[task.main] == pytest.approx(outcome["metrics"][first_split][task.main], abs=tolerance)
  mrpc_row = next(
    r for r in _eval_rows(os.path.join(glue_suite, "mrpc")) if r["step"] == result["tasks"]["mrpc"]["best_step"]
  )
  mrpc_saved = _json(os.path.join(glue_suite, "mrpc", "predictions.json"))["mrpc"]
  assert mrpc_row["mcc"] == pytest.approx(
    skm.matthews_corrcoef(mrpc_saved["labels"], mrpc_saved["predictions"]), abs=1e-6
  )
  scores = {n: r["metrics"] for n, r in result["tasks"].items()}
  assert result["average"] == pytest.approx(suites.suite_average(scores))


def test_suite_md_is_the_glue_table_with_the_models_row(glue_suite):
  result = _json(os.path.join(glue_suite, "suite.json"))
  with open(os.path.join(glue_suite, "suite.md")) as f:
    lines = f.read().splitlines()
  header = (
    "| Model | Avg | CoLA (MCC) | SST-2 (acc) | MRPC (F1/acc) | QQP (F1/acc) | STS-B (P/S corr) | MNLI-m (acc) "
    "| MNLI-mm (acc) | QNLI (acc) | RTE (acc) | WNLI (acc) |"
  )
  assert header in lines
  row = lines[lines.index(header) + 2].strip("|").split("|")
  cells = [c.strip() for c in row]
  tasks = result["tasks"]
  pct = lambda v: f"{100 * v:.1f}"
  assert cells[0] == result["model"] and cells[1] == pct(result["average"] / 100)
  mrpc, stsb = tasks["mrpc"]["metrics"]["mrpc"], tasks["stsb"]["metrics"]["stsb"]
  assert cells[2:] == [
    "–",
    "–",
    f"{pct(mrpc['f1'])}/{pct(mrpc['accuracy'])}",
    "–",
    f"{pct(stsb['pearson'])}/{pct(stsb['spearman'])}",
    pct(tasks["mnli"]["metrics"]["mnli-m"]["accuracy"]),
    pct(tasks["mnli"]["metrics"]["mnli-mm"]["accuracy"]),
    "–",
    "–",
    "–",
  ]
  assert "over the 3 of 9 tasks run" in " ".join(lines)


def test_a_second_run_skips_the_finished_tasks_without_training(glue_suite, pretrained, glue_data, monkeypatch, capsys):
  before = {n: open(os.path.join(glue_suite, n, "metrics.jsonl")).read() for n in TASKS}
  suite_json = _json(os.path.join(glue_suite, "suite.json"))

  def no_training(*args, **kwargs):
    raise AssertionError("a finished task was trained again")

  monkeypatch.setattr(loop, "run", no_training)
  assert _suite(glue_suite, pretrained, glue_data, "--tasks=mrpc,stsb,mnli", *OVERRIDES) == 0
  captured = capsys.readouterr()
  assert json.loads(captured.out) == suite_json == _json(os.path.join(glue_suite, "suite.json"))
  assert captured.err.count("is finished") == 3
  assert before == {n: open(os.path.join(glue_suite, n, "metrics.jsonl")).read() for n in TASKS}


def test_a_task_missing_from_suite_json_resumes_its_run_and_is_scored_again(glue_suite, pretrained, glue_data, capsys):
  path = os.path.join(glue_suite, "suite.json")
  result = _json(path)
  stsb = result["tasks"].pop("stsb")
  with open(path, "w") as f:
    json.dump(result, f)
  metrics_before = open(os.path.join(glue_suite, "stsb", "metrics.jsonl")).read()
  assert _suite(glue_suite, pretrained, glue_data, "--tasks=stsb", *OVERRIDES) == 0
  assert "finished" in capsys.readouterr().err  # loop.run's own note: nothing left to train
  again = _json(path)["tasks"]["stsb"]
  assert again["metrics"]["stsb"] == pytest.approx(stsb["metrics"]["stsb"]) and again["best_step"] == stsb["best_step"]
  assert open(os.path.join(glue_suite, "stsb", "metrics.jsonl")).read() == metrics_before


def test_the_regression_run_exports_as_a_regression_classifier_with_the_same_scores(glue_suite, tmp_path, capsys):
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  from jaxpretrain import config as config_lib
  from jaxpretrain.tasks import registry

  run_dir, out = os.path.join(glue_suite, "stsb"), str(tmp_path / "hf")
  step = _json(os.path.join(glue_suite, "suite.json"))["tasks"]["stsb"]["best_step"]
  assert cli.main(["export", f"--workdir={run_dir}", f"--out={out}", f"--step={step}"]) == 0
  assert json.loads(capsys.readouterr().out)["architecture"] == "BertForSequenceClassification"
  model = transformers.AutoModelForSequenceClassification.from_pretrained(out)
  assert model.config.problem_type == "regression" and model.config.num_labels == 1

  ours = np.array(_json(os.path.join(run_dir, "predictions.json"))["stsb"]["predictions"])
  theirs = []
  for batch in registry.build_data(config_lib.load_saved(run_dir), run_dir, with_train=False).eval_batches():
    inputs = {k: torch.tensor(batch[k], dtype=torch.long) for k in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.no_grad():
      theirs.append(model(**inputs).logits[:, 0].numpy()[batch["weight"] > 0])
  np.testing.assert_allclose(np.concatenate(theirs), ours, atol=1e-4)

  # The pipeline applies no sigmoid to a regression model: its score is the raw output.
  tokenizer = transformers.AutoTokenizer.from_pretrained(out)
  pipe = transformers.pipeline("text-classification", model=model, tokenizer=tokenizer)
  pair = {"text": "the film was good", "text_pair": "it was fine"}
  with torch.no_grad():
    raw = model(**tokenizer(pair["text"], pair["text_pair"], return_tensors="pt")).logits[0, 0].item()
  assert pipe(pair)["score"] == pytest.approx(raw, abs=1e-5)


@pytest.mark.parametrize(
  "args,message",
  [
    (["--suite=superglue"], "--suite='superglue': no such suite; choose one of glue"),
    (["--tasks=cola,nope,xx"], "--tasks: nope, xx not in suite glue; choose from cola, sst2, mrpc, qqp, stsb, mnli,"),
    (["--tasks=cola,rte"], "has no cola/, rte/: each task reads DATA_DIR/TASK, a DatasetDict.save_to_disk"),
    (["--init_from="], "--init_from is required"),
  ],
)
def test_bad_arguments_are_one_line_before_any_work(args, message, tmp_path, capsys, glue_data):
  argv = ["suite", f"--workdir={tmp_path / 'w'}", "--init_from=somewhere", f"--data_dir={glue_data}", *args]
  assert cli.main(argv) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and message in err, err
  assert not os.path.exists(tmp_path / "w")


def test_a_workdir_of_another_model_is_refused(tmp_path, capsys, glue_data):
  workdir = tmp_path / "w"
  workdir.mkdir()
  (workdir / "suite.json").write_text(json.dumps({"suite": "glue", "init_from": "/runs/other", "tasks": {}}))
  (tmp_path / "mine").mkdir()
  argv = ["suite", f"--workdir={workdir}", f"--init_from={tmp_path / 'mine'}", f"--data_dir={glue_data}"]
  assert cli.main([*argv, "--tasks=mrpc"]) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "holds the init_from '/runs/other'" in err and "use another --workdir" in err
