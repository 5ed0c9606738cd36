"""Bad fine-tuning input: one line on stderr, exit status 2, no traceback."""

import json
import os

from jaxpretrain import cli
from jaxpretrain.config import CONFIG_DIR
from tests.finetune.helpers import MODEL

TINY = [
  f"--config={CONFIG_DIR}/finetune_tiny.py",
  "--config.train.num_epochs=0",
  "--config.eval.every_steps=0",
  "--config.data.train_examples=16",
  "--config.data.eval_examples=8",
]
TINY += [f"--config.{k}={v}" for k, v in MODEL.items()] + [
  "--config.task.name=classification",
  "--config.data.seq_len=32",
  "--config.train.steps=2",
  "--config.train.batch_size=8",
  "--config.train.progress=false",
]


def _fails(capsys, argv, *expected):
  code = cli.main(argv)
  err = capsys.readouterr().err
  assert code == 2, err
  assert err.count("\n") == 1 and "Traceback" not in err, err
  for text in expected:
    assert text in err, err
  return err


def _jsonl(path, rows):
  with open(path, "w") as f:
    f.write("".join(json.dumps(r) + "\n" for r in rows))
  return str(path)


def test_init_from_pointing_at_nothing(capsys, tmp_path):
  _fails(
    capsys,
    ["finetune", "--workdir", str(tmp_path / "ft"), *TINY, f"--config.init_from={tmp_path}/missing"],
    f"init_from={tmp_path}/missing: no such directory",
  )


def test_init_from_a_directory_without_checkpoints(capsys, tmp_path):
  (tmp_path / "notes").mkdir()
  (tmp_path / "notes" / "readme.txt").write_text("not a run")
  _fails(
    capsys,
    ["finetune", "--workdir", str(tmp_path / "ft"), *TINY, f"--config.init_from={tmp_path}/notes"],
    "no checkpoints in",
    "notes",
  )


def test_an_override_that_contradicts_the_init_from_run_is_an_error_before_anything_is_written(
  capsys, tmp_path, pretrained
):
  _fails(
    capsys,
    [
      "finetune",
      "--workdir",
      str(tmp_path / "ft"),
      *TINY,
      "--config.model.intermediate_size=128",
      f"--config.init_from={pretrained}",
    ],
    f"model.intermediate_size=128 contradicts init_from={pretrained}, whose model.intermediate_size=64",
  )
  assert not os.path.exists(tmp_path / "ft")


def test_a_vocabulary_override_that_contradicts_the_init_from_run_is_an_error(capsys, tmp_path, pretrained):
  _fails(
    capsys,
    [
      "finetune",
      "--workdir",
      str(tmp_path / "ft"),
      *TINY,
      "--config.model.vocab_size=600",
      f"--config.init_from={pretrained}",
    ],
    f"model.vocab_size=600 contradicts init_from={pretrained}, whose model.vocab_size=512",
  )


def test_label_outside_num_labels_names_the_line(capsys, tmp_path):
  data = _jsonl(
    tmp_path / "train.jsonl",
    [{"text": "good film", "label": 0}, {"text": "bad film", "label": 1}, {"text": "odd film", "label": 2}],
  )
  _fails(
    capsys,
    ["finetune", "--workdir", str(tmp_path / "ft"), *TINY, f"--config.data.train={data}", "--config.task.num_labels=2"],
    f"{data}:3: label 2 is outside task.num_labels=2",
  )


def test_empty_labeled_file(capsys, tmp_path):
  (tmp_path / "empty.jsonl").write_text("")
  _fails(
    capsys,
    ["finetune", "--workdir", str(tmp_path / "ft"), *TINY, f"--config.data.train={tmp_path}/empty.jsonl"],
    "labeled data file is empty",
  )


def test_unknown_tfds_dataset(capsys, tmp_path):
  _fails(
    capsys,
    ["finetune", "--workdir", str(tmp_path / "ft"), *TINY, "--config.data.train=tfds:no_such_dataset_xyz"],
    "unknown tfds dataset 'no_such_dataset_xyz'",
  )


def test_evaluate_without_a_run(capsys, tmp_path):
  _fails(capsys, ["evaluate", "--workdir", str(tmp_path)], "--config is required")
  os.makedirs(tmp_path / "run")
  _fails(
    capsys,
    ["evaluate", "--workdir", str(tmp_path / "run"), f"--config={CONFIG_DIR}/finetune_tiny.py"],
    "no checkpoints in",
  )
