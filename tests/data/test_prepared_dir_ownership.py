"""`prepare` writes only into a directory it owns: never into (or over) a user's files."""

import os

import pytest

from jaxpretrain.data.pretrain import prepare
from jaxpretrain.errors import UserError

KW = dict(seq_len=32, vocab_size=256, eval_fraction=0.1, embedded_documents=60, records_per_shard=50)


def _files(path):
  return {
    os.path.relpath(os.path.join(d, f), path): open(os.path.join(d, f), "rb").read()
    for d, _, fs in os.walk(path)
    for f in fs
  }


def test_refuses_a_users_non_empty_directory_and_changes_nothing(tmp_path):
  user = tmp_path / "mine"
  user.mkdir()
  (user / "notes.txt").write_text("precious")
  (user / "train-00000-00000.array_record").write_bytes(b"the user's own file with a shard's name")
  before = _files(user)
  with pytest.raises(UserError, match="non-empty directory that jaxpretrain did not prepare"):
    prepare.prepare("embedded", str(user), **KW)
  assert _files(user) == before


def test_new_and_empty_directories_are_claimed_and_reprepared(tmp_path):
  for out in (tmp_path / "new", tmp_path / "empty"):
    if out.name == "empty":
      out.mkdir()
    meta = prepare.prepare("embedded", str(out), **KW)
    assert os.path.isfile(out / prepare.OWNER_MARKER) and meta["splits"]["train"]["records"] > 0
    again = prepare.prepare("embedded", str(out), **dict(KW, embedded_documents=80))  # ours: may be replaced
    assert again["splits"]["train"]["records"] > meta["splits"]["train"]["records"]


def test_a_directory_prepared_before_the_marker_existed_is_still_ours(tmp_path):
  out = tmp_path / "old"
  prepare.prepare("embedded", str(out), **KW)
  os.remove(out / prepare.OWNER_MARKER)
  prepare.prepare("embedded", str(out), **KW)  # metadata.json and parts/ show it is a prepared directory


def test_a_file_is_not_a_directory(tmp_path):
  path = tmp_path / "file"
  path.write_text("x")
  with pytest.raises(UserError, match="is a file, not a directory"):
    prepare.prepare("embedded", str(path), **KW)
  assert path.read_text() == "x"
