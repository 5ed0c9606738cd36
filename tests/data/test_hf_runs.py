"""`hf:` datasets through the CLI: pretraining and a GLUE-style fine-tune end to end, bad input in one line."""

import json
import os

import pytest

from jaxpretrain import cli
from jaxpretrain.data.readers import embedded
from tests.data.hf_helpers import GLUE_LABELS, corpus, glue_dict, hf_offline, save, sentences  # noqa: F401
from tests.finetune.helpers import MODEL
from tests.finetune.test_errors import TINY, _fails

pytest.importorskip("datasets")

PRETRAIN = [
  "--config=configs/tiny.py",
  *[f"--config.{k}={v}" for k, v in MODEL.items()],
  "--config.model.max_position_embeddings=32",
  "--config.data.seq_len=32",
  "--config.data.eval_fraction=0.05",
  "--config.train.steps=2",
  "--config.train.batch_size=8",
  "--config.train.warmup_steps=1",
  "--config.train.log_every=1",
  "--config.train.progress=false",
  "--config.eval.every_steps=0",
  "--config.eval.batches=1",
  "--config.checkpoint.every_steps=2",
]


@pytest.fixture
def sst2(tmp_path):
  """An sst2-like saved DatasetDict (sentence, ClassLabel label, idx): train 32, validation 16, test 8 unlabeled."""
  texts = [e["text"] for e in embedded.labeled_examples("train", 56, 0)]
  return save(glue_dict({"sentence": texts}, {"train": 32, "validation": 16, "test": 8}), tmp_path / "sst2")


def test_pretrain_on_a_saved_dataset(tmp_path, capsys):
  path = corpus(list(embedded.documents(300, seed=1)), tmp_path / "corpus")
  workdir = tmp_path / "run"
  assert cli.main(["pretrain", *PRETRAIN, f"--workdir={workdir}", f"--config.data.train=hf:{path}"]) == 0, (
    capsys.readouterr().err
  )
  rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in rows if "split" not in r] == [1, 2]
  metadata = json.loads((workdir / "data" / "metadata.json").read_text())
  assert metadata["options"]["spec"] == f"hf:{path}"


def test_finetune_on_a_glue_dataset_carries_its_label_names(tmp_path, capsys, sst2):
  workdir = tmp_path / "ft"
  code = cli.main(["finetune", f"--workdir={workdir}", *TINY, f"--config.data.train=hf:{sst2}"])
  assert code == 0, capsys.readouterr().err
  info = json.loads((workdir / "data_info.json").read_text())
  assert info["label_names"] == GLUE_LABELS and info["num_labels"] == 2
  assert (info["train"], info["eval"]) == (f"hf:{sst2}", f"hf:{sst2}")  # eval: the validation split
  assert (info["train_examples"], info["eval_examples"]) == (16, 8)  # data.train_examples / eval_examples caps
  capsys.readouterr()
  assert cli.main(["evaluate", f"--workdir={workdir}"]) == 0
  result = json.loads((workdir / "eval.json").read_text())
  assert result["label_names"] == GLUE_LABELS and result["examples"] == 8
  out = tmp_path / "exported"
  assert cli.main(["export", f"--workdir={workdir}", f"--out={out}"]) == 0
  assert json.loads((out / "config.json").read_text())["id2label"] == {"0": "negative", "1": "positive"}


def _labeled(tmp_path, name, columns, labels):
  import datasets

  rows = dict(columns, label=labels)
  return save(datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows)}), tmp_path / name)


@pytest.mark.parametrize(
  "make, expected",
  [
    (lambda d, sst2: f"hf:{d}/nothing", lambda d, sst2: f"hf dataset directory not found: {d}/nothing"),
    (lambda d, sst2: f"hf:{sst2}:dev", lambda d, sst2: "has no split 'dev' (it has: train, validation, test)"),
    (
      lambda d, sst2: f"hf:{_labeled(d, 'reviews', {'review': sentences(8)}, [0, 1] * 4)}",
      lambda d, sst2: (
        f"hf:{d}/reviews:train[0]: no text field (expected 'text', or 'text_a' and 'text_b'; it has: review, label)"
      ),
    ),
    (
      lambda d, sst2: f"hf:{_labeled(d, 'stray', {'text': sentences(8)}, [0, 1, 0, 1, 5, 0, 1, 0])}",
      lambda d, sst2: f"hf:{d}/stray:train[4]: label 5 is outside task.num_labels=2 (ids 0..1)",
    ),
    (
      lambda d, sst2: f"hf:{save(glue_dict({'sentence': []}, {'train': 0}), d / 'empty')}",
      lambda d, sst2: f"no labeled examples in hf:{d}/empty split 'train'",
    ),
  ],
  ids=["missing-dir", "unknown-split", "missing-column", "label-outside-num-labels", "empty"],
)
def test_bad_hf_data_is_one_line_and_writes_nothing(tmp_path, capsys, sst2, make, expected):
  spec, workdir = make(tmp_path, sst2), tmp_path / "ft"
  argv = ["finetune", f"--workdir={workdir}", *TINY, f"--config.data.train={spec}", "--config.task.num_labels=2"]
  _fails(capsys, argv, expected(tmp_path, sst2))
  assert not (workdir / "config.json").exists() and not (workdir / "checkpoints").exists()


def test_an_empty_corpus_is_one_line_and_writes_nothing(tmp_path, capsys):
  path = corpus([], tmp_path / "empty")
  workdir = tmp_path / "run"
  _fails(
    capsys,
    ["pretrain", *PRETRAIN, f"--workdir={workdir}", f"--config.data.train=hf:{path}"],
    f"no text in hf:{path} split 'train'",
  )
  assert not (workdir / "config.json").exists() and not os.path.exists(workdir / "data" / "metadata.json")
