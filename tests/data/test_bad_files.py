"""Files a user hands us, or damaged: one-line `UserError`s naming the file, never a traceback.

Every kind of file goes through `jaxpretrain.files`: data files (csv/tsv/jsonl/txt), run files
(config.json, data_info.json, metrics.jsonl), HF weights and tokenizer files. Paths the user gives
(`--workdir`, `data.train`, `init_from`, `data.prepared_dir`) must be the right kind of thing.
"""

import json
import os

import numpy as np
import pytest

from jaxpretrain import config as config_lib
from jaxpretrain import files
from jaxpretrain.data.finetune import kinds
from jaxpretrain.data.finetune.base import saved_info
from jaxpretrain.data.readers import labeled, pairs, text
from jaxpretrain.data.tokenizer import Tokenizer
from jaxpretrain.errors import UserError
from jaxpretrain.hf import source
from tests.finetune.test_errors import TINY, _fails


def _one_line_error(fn, *args, **kwargs) -> str:
  with pytest.raises(UserError) as e:
    fn(*args, **kwargs)
  message = str(e.value)
  assert "\n" not in message, message
  return message


def _deny(monkeypatch, path, mode):
  """Where permissions do not stop root, `os.access` says what they would say to anyone else."""
  real = os.access
  monkeypatch.setattr(
    os, "access", lambda p, m, **kw: False if m & mode and os.path.abspath(p) == str(path) else real(p, m, **kw)
  )


CSV_TEXT = "text,label\ngood film,1\nbad film,0\n"


@pytest.mark.parametrize(
  "name, content, expected",
  [
    (
      "latin1.csv",
      "text,label\ncaf\u00e9 cr\u00e8me,1\n".encode("latin-1"),
      "is not UTF-8 text: bad byte 0xe9 at line 2",
    ),
    ("utf16.csv", CSV_TEXT.encode("utf-16"), "is UTF-16 text, not UTF-8"),
    ("utf16.tsv", CSV_TEXT.replace(",", "\t").encode("utf-16"), "is UTF-16 text, not UTF-8"),
    ("utf16.jsonl", b'{"text": "a", "label": 0}\n'.decode().encode("utf-16"), "is UTF-16 text, not UTF-8"),
    ("binary.csv", b"text,label\n\x00\x01\x02\x03,1\n", "NUL byte at line 2"),
    ("bom-less-utf16.jsonl", '{"text": "a", "label": 0}\n'.encode("utf-16-le"), "NUL byte at line 1"),
  ],
)
def test_labeled_files_in_other_encodings(tmp_path, name, content, expected):
  path = tmp_path / name
  path.write_bytes(content)
  message = _one_line_error(labeled.read_examples, str(path), kinds.CLASSIFICATION, split="train")
  assert str(path) in message and expected in message


def test_a_utf8_bom_is_skipped(tmp_path):
  path = tmp_path / "bom.csv"
  path.write_bytes(b"\xef\xbb\xbf" + CSV_TEXT.encode())
  records, _ = labeled.read_examples(str(path), kinds.CLASSIFICATION, split="train")
  assert [r["label"] for r in records] == [1, 0]


@pytest.mark.parametrize(
  "content, expected",
  [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "NUL byte"),
    ("one document\n".encode("utf-16"), "is UTF-16 text, not UTF-8"),
  ],
)
def test_pretraining_text_files(tmp_path, content, expected):
  path = tmp_path / "corpus.txt"
  path.write_bytes(content)
  message = _one_line_error(lambda: list(text.iter_documents(str(path))))
  assert str(path) in message and expected in message


def test_translation_pairs_in_utf16(tmp_path):
  path = tmp_path / "pairs.jsonl"
  path.write_bytes(json.dumps({"source": "a", "target": "b"}).encode("utf-16"))
  message = _one_line_error(pairs.read_pairs, str(path), "train")
  assert str(path) in message and "UTF-16" in message


def test_an_unreadable_data_file(tmp_path, monkeypatch):
  path = tmp_path / "secret.csv"
  path.write_text(CSV_TEXT)
  os.chmod(path, 0o000)
  try:
    if os.access(path, os.R_OK):  # running as root
      _deny(monkeypatch, path, os.R_OK)
    message = _one_line_error(labeled.read_examples, str(path), kinds.CLASSIFICATION, split="train")
    assert str(path) in message and "permission denied" in message
  finally:
    os.chmod(path, 0o600)


# --- run files ---------------------------------------------------------------------------------


def _truncated_json(path, value):
  text = json.dumps(value, indent=2)
  path.write_text(text[: len(text) // 2])
  return path


def test_truncated_config_json(tmp_path):
  _truncated_json(tmp_path / "config.json", config_lib.to_dict(config_lib.defaults()))
  message = _one_line_error(config_lib.load_saved, str(tmp_path))
  assert f"{tmp_path}/config.json is not valid JSON (truncated or damaged?)" in message


def test_empty_and_binary_config_json(tmp_path):
  (tmp_path / "config.json").write_text("")
  assert "is empty" in _one_line_error(config_lib.load_saved, str(tmp_path))
  (tmp_path / "config.json").write_bytes(b"\xff\xfe{\x00}\x00")
  assert "UTF-16" in _one_line_error(config_lib.load_saved, str(tmp_path))
  (tmp_path / "config.json").write_text("[1, 2]")
  assert "holds a JSON list, expected a dict" in _one_line_error(config_lib.load_saved, str(tmp_path))


def test_truncated_data_info_json(tmp_path):
  _truncated_json(tmp_path / "data_info.json", {"task": "classification", "label_names": ["neg", "pos"]})
  message = _one_line_error(saved_info, str(tmp_path))
  assert f"{tmp_path}/data_info.json is not valid JSON" in message


def test_metrics_jsonl_rows(tmp_path):
  path = tmp_path / "metrics.jsonl"
  path.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "lo')
  message = _one_line_error(files.read_jsonl, str(path), "metrics file")
  assert f"metrics file {path}:2: not JSON" in message
  path.write_text('{"step": 1, "loss": 2.0}\n\n')
  assert files.read_jsonl(str(path)) == [{"step": 1, "loss": 2.0}]


def test_a_directory_given_as_a_file(tmp_path):
  message = _one_line_error(files.read_json, str(tmp_path), "run config")
  assert message == f"run config {tmp_path} is a directory, not a file"


# --- HF directories and tokenizers -------------------------------------------------------------


def test_truncated_safetensors(tmp_path):
  from safetensors.numpy import save_file

  (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
  path = tmp_path / "model.safetensors"
  save_file({"w": np.ones((64, 64), np.float32)}, str(path))
  data = path.read_bytes()
  path.write_bytes(data[: len(data) // 2])
  message = _one_line_error(source.load_tensors, str(tmp_path))
  assert f"cannot read HF weights file {path} (truncated or damaged?)" in message


def test_damaged_hf_files(tmp_path):
  (tmp_path / "config.json").write_text('{"model_type": "be')
  assert f"HF config {tmp_path}/config.json is not valid JSON" in _one_line_error(source.read_config, str(tmp_path))
  (tmp_path / "model.safetensors.index.json").write_text('{"weight_map": ')
  message = _one_line_error(source.weight_files, str(tmp_path))
  assert f"{tmp_path}/model.safetensors.index.json is not valid JSON" in message
  (tmp_path / "model.safetensors.index.json").write_text("{}")
  assert "has no 'weight_map'" in _one_line_error(source.weight_files, str(tmp_path))


def test_hf_init_from_a_file(tmp_path):
  path = tmp_path / "model.safetensors"
  path.write_bytes(b"")
  assert _one_line_error(source.resolve, str(path)) == f"hf:{path} is a file, expected a HF model directory"


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
  directory = tmp_path_factory.mktemp("tok") / "tokenizer"
  Tokenizer.train_wordpiece(["the good film", "a bad film"] * 20, 64).save(str(directory))
  return directory


@pytest.mark.parametrize("name", ["tokenizer.json", "tokenizer_config.json"])
def test_truncated_tokenizer_files(tmp_path, tokenizer_dir, name):
  import shutil

  directory = tmp_path / "tok"
  shutil.copytree(tokenizer_dir, directory)
  path = directory / name
  data = path.read_bytes()
  path.write_bytes(data[: len(data) // 2])
  message = _one_line_error(Tokenizer.load, str(directory))
  assert f"tokenizer file {path} is not valid JSON (truncated or damaged?)" in message


def test_tokenizer_vocab_in_latin1(tmp_path):
  directory = tmp_path / "tok"
  directory.mkdir()
  (directory / "vocab.txt").write_bytes("[PAD]\n[UNK]\ncaf\u00e9\n".encode("latin-1"))
  message = _one_line_error(Tokenizer.load, str(directory))
  assert f"tokenizer file {directory}/vocab.txt is not UTF-8 text" in message


# --- through the CLI: exit 2, one line, no traceback -------------------------------------------


def test_cli_latin1_training_file(capsys, tmp_path):
  path = tmp_path / "train.csv"
  path.write_bytes(("text,label\n" + "".join(f"caf\u00e9 {i},{i % 2}\n" for i in range(20))).encode("latin-1"))
  _fails(
    capsys,
    ["finetune", "--workdir", str(tmp_path / "ft"), *TINY, f"--config.data.train={path}"],
    f"{path} is not UTF-8 text: bad byte 0xe9 at line 2",
  )


def test_cli_evaluate_with_a_truncated_config_json(capsys, tmp_path):
  _truncated_json(tmp_path / "config.json", config_lib.to_dict(config_lib.defaults()))
  _fails(capsys, ["evaluate", "--workdir", str(tmp_path)], f"{tmp_path}/config.json is not valid JSON")


def test_cli_utf16_pretraining_corpus(capsys, tmp_path):
  path = tmp_path / "corpus.txt"
  path.write_bytes("one document\nanother one\n".encode("utf-16"))
  _fails(
    capsys,
    ["prepare", "--config=configs/tiny.py", "--workdir", str(tmp_path / "pt"), f"--config.data.train={path}"],
    f"{path} is UTF-16 text, not UTF-8",
  )


# --- paths of the wrong kind -------------------------------------------------------------------


def test_cli_workdir_is_a_file(capsys, tmp_path):
  workdir = tmp_path / "run"
  workdir.write_text("not a directory")
  _fails(capsys, ["finetune", "--workdir", str(workdir), *TINY], f"--workdir {workdir} is a file, expected a directory")


def test_cli_workdir_below_a_file(capsys, tmp_path):
  (tmp_path / "file").write_text("")
  workdir = tmp_path / "file" / "run"
  _fails(
    capsys,
    ["finetune", "--workdir", str(workdir), *TINY],
    f"--workdir {workdir} cannot be created: {tmp_path}/file is a file, not a directory",
  )


def test_cli_unwritable_workdir(capsys, tmp_path, monkeypatch):
  workdir = tmp_path / "run"
  workdir.mkdir()
  os.chmod(workdir, 0o500)
  try:
    if os.access(workdir, os.W_OK):  # running as root
      _deny(monkeypatch, workdir, os.W_OK)
    _fails(capsys, ["finetune", "--workdir", str(workdir), *TINY], f"--workdir {workdir} is not writable")
    _fails(
      capsys, ["finetune", "--workdir", str(workdir / "sub"), *TINY], f"{workdir} is not writable (permission denied)"
    )
  finally:
    os.chmod(workdir, 0o700)


def test_cli_labeled_data_is_a_directory(capsys, tmp_path):
  _fails(
    capsys,
    ["finetune", "--workdir", str(tmp_path / "ft"), *TINY, f"--config.data.train={tmp_path}"],
    f"data.train {tmp_path} is a directory, expected a file",
  )


def test_cli_init_from_a_file(capsys, tmp_path):
  (tmp_path / "ckpt").write_text("")
  _fails(
    capsys,
    ["finetune", "--workdir", str(tmp_path / "ft"), *TINY, f"--config.init_from={tmp_path}/ckpt"],
    f"init_from={tmp_path}/ckpt is a file, not a run directory",
  )


def test_cli_prepared_dir_is_a_file(capsys, tmp_path):
  (tmp_path / "prepared").write_text("")
  _fails(
    capsys,
    [
      "pretrain",
      "--config=configs/tiny.py",
      "--workdir",
      str(tmp_path / "pt"),
      f"--config.data.prepared_dir={tmp_path}/prepared",
    ],
    f"data.prepared_dir {tmp_path}/prepared is a file, expected a directory",
  )


def test_metrics_jsonl_cut_by_a_crash_reads_and_a_damaged_one_is_one_line(tmp_path):
  from jaxpretrain.train.metrics import read_metrics

  path = tmp_path / "metrics.jsonl"
  path.write_text('{"step": 1}\n{"step": 2}\n{"st')  # the last row was being written
  assert read_metrics(str(tmp_path)) == [{"step": 1}, {"step": 2}]
  path.write_text('{"step": 1}\n{"st\n{"step": 2}\n')
  with pytest.raises(UserError, match=r"metrics.jsonl:2: not JSON"):
    read_metrics(str(tmp_path))


@pytest.mark.parametrize("command", [["prepare", "--config=configs/tiny.py"], ["demo", "--small"]])
def test_prepare_and_demo_name_a_workdir_that_is_a_file(tmp_path, capsys, command):
  from jaxpretrain import cli

  workdir = tmp_path / "a_file"
  workdir.write_text("mine")
  assert cli.main([*command, f"--workdir={workdir}"]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert err == [f"jaxpretrain: error: --workdir {workdir} is a file, expected a directory"]
  assert workdir.read_text() == "mine"


@pytest.mark.parametrize("name", ["reviews.txt", "reviews", "reviews.parquet"])
def test_a_labeled_file_of_another_format_names_the_formats_read(tmp_path, name):
  path = tmp_path / name
  path.write_text("good film\tpos\n")
  message = _one_line_error(labeled.read_examples, str(path), kinds.CLASSIFICATION, split="train")
  assert message.startswith(f"labeled data file {path}: ")
  assert "is not a format jaxpretrain reads; use .jsonl (one JSON object per line), .csv or .tsv" in message
  message = _one_line_error(pairs.read_pairs, str(path), "train")
  assert message.startswith(f"translation data file {path}: ") and "use .jsonl" in message


@pytest.mark.parametrize(
  "name, content, expected",
  [
    (
      "t.csv",
      "review,sentiment\ngood film,pos\n",
      ":2: no text field (expected 'text', or 'text_a' and 'text_b'; it has: review, sentiment)",
    ),
    ("t.csv", "text,sentiment\ngood film,pos\n", ":2: no 'label' field or column (it has: text, sentiment)"),
    ("t.jsonl", '{"text": "good film", "stars": 5}\n', ":1: no 'label' field or column (it has: text, stars)"),
    ("t.csv", "text,label\ngood film,\n", ":2: empty 'label'"),
  ],
)
def test_a_missing_column_lists_the_columns_there_are(tmp_path, name, content, expected):
  path = tmp_path / name
  path.write_text(content)
  message = _one_line_error(labeled.read_examples, str(path), kinds.CLASSIFICATION, split="train")
  assert message == f"{path}{expected}"
