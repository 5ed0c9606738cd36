"""`jaxpretrain export --out`: a non-empty directory only with --overwrite, replaced whole; never a
run directory; a failed export leaves the old directory as it was; every file 0644."""

import json
import os
import shutil
import stat

import pytest

from jaxpretrain import cli
from jaxpretrain.errors import UserError
from jaxpretrain.hf import exporter
from jaxpretrain.train import loop
from tests.run_configs import tiny_pretrain_config

pytestmark = pytest.mark.xdist_group("export_out")


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_prepared):
  """A finished 4-step tiny BERT run (one checkpoint)."""
  workdir = str(tmp_path_factory.mktemp("run") / "w")
  loop.run(tiny_pretrain_config(tiny_prepared, **{"train.steps": 4}), workdir)
  return workdir


@pytest.fixture()
def umask_022():
  previous = os.umask(0o022)
  yield
  os.umask(previous)


def _user_dir(path):
  """An HF directory a user already has: their config, tokenizer and a pickled model."""
  os.makedirs(path)
  for name, text in (("config.json", '{"mine": true}'), ("tokenizer.json", "{}"), ("pytorch_model.bin", "old")):
    with open(os.path.join(path, name), "w") as f:
      f.write(text)
  return {name: open(os.path.join(path, name)).read() for name in os.listdir(path)}


def _contents(path):
  """{relative path: bytes} of every file below `path`."""
  files = {}
  for directory, _, names in os.walk(path):
    for name in names:
      full = os.path.join(directory, name)
      with open(full, "rb") as f:
        files[os.path.relpath(full, path)] = f.read()
  return files


def _export(capsys, *args):
  code = cli.main(["export", *args])
  captured = capsys.readouterr()
  return code, captured


def test_non_empty_out_is_refused_without_overwrite(run, tmp_path, capsys):
  out = str(tmp_path / "hf")
  mine = _user_dir(out)
  code, captured = _export(capsys, f"--workdir={run}", f"--out={out}")
  assert code == 2
  lines = captured.err.strip().splitlines()
  assert len(lines) == 1 and "is not empty" in lines[0] and "--overwrite" in lines[0], captured.err
  assert {name: open(os.path.join(out, name)).read() for name in os.listdir(out)} == mine


def test_overwrite_replaces_the_directory_whole_with_0644_files(run, tmp_path, capsys, umask_022):
  out = str(tmp_path / "hf")
  _user_dir(out)
  code, captured = _export(capsys, f"--workdir={run}", f"--out={out}", "--overwrite")
  assert code == 0, captured.err
  names = set(os.listdir(out))
  assert "pytorch_model.bin" not in names and {"config.json", "model.safetensors", "tokenizer.json"} <= names
  assert "mine" not in json.loads(open(os.path.join(out, "config.json")).read())
  assert {name: stat.S_IMODE(os.stat(os.path.join(out, name)).st_mode) for name in names} == dict.fromkeys(names, 0o644)
  assert stat.S_IMODE(os.stat(out).st_mode) == 0o755
  assert sorted(os.listdir(tmp_path)) == ["hf"]  # no temporary or set-aside directory left


def test_new_out_gets_0644_files(run, tmp_path, capsys, umask_022):
  out = tmp_path / "new" / "hf"
  code, captured = _export(capsys, f"--workdir={run}", f"--out={out}")
  assert code == 0, captured.err
  modes = {stat.S_IMODE(os.stat(out / name).st_mode) for name in os.listdir(out)}
  assert modes == {0o644} and "model.safetensors" in os.listdir(out)


@pytest.mark.parametrize("where", ["workdir", "inside", "parent", "other_run", "inside_other_run"])
def test_a_run_directory_is_never_written_even_with_overwrite(run, tmp_path, capsys, where):
  workdir = str(tmp_path / "runs" / "w")
  shutil.copytree(run, workdir)
  other = str(tmp_path / "other")
  shutil.copytree(run, other)
  out = {
    "workdir": workdir,
    "inside": os.path.join(workdir, "hf"),
    "parent": str(tmp_path / "runs"),
    "other_run": other,
    "inside_other_run": os.path.join(other, "checkpoints"),
  }[where]
  before = {d: _contents(d) for d in (workdir, other)}
  code, captured = _export(capsys, f"--workdir={workdir}", f"--out={out}", "--overwrite")
  assert code == 2
  lines = captured.err.strip().splitlines()
  assert len(lines) == 1 and "run directory" in lines[0], captured.err
  assert {d: _contents(d) for d in (workdir, other)} == before
  assert not os.path.exists(os.path.join(workdir, "hf"))


def test_overwrite_refuses_a_directory_holding_a_run(run, tmp_path):
  out = str(tmp_path / "hf")
  _user_dir(out)
  shutil.copytree(run, os.path.join(out, "sub", "w"))
  with pytest.raises(UserError, match="holds the jaxpretrain run directory .*--overwrite would delete it"):
    exporter.export_run(run, out, overwrite=True)
  assert os.path.isfile(os.path.join(out, "sub", "w", "config.json"))


def test_a_failed_export_leaves_the_old_directory_intact(run, tmp_path, monkeypatch):
  out = str(tmp_path / "hf")
  _user_dir(out)
  before = _contents(out)

  def half_written(directory, *args, **kwargs):
    with open(os.path.join(directory, "config.json"), "w") as f:
      f.write("{}")
    raise OSError("No space left on device")

  monkeypatch.setattr(exporter, "write_hf", half_written)
  with pytest.raises(UserError, match=rf"^exporting to {out} \(left as it was\) failed: No space left on device"):
    exporter.export_run(run, out, overwrite=True)
  assert _contents(out) == before
  assert sorted(os.listdir(tmp_path)) == ["hf"]  # the temporary directory is gone


def test_help_documents_overwrite(capsys):
  with pytest.raises(SystemExit):
    cli.main(["export", "--help"])
  assert "--overwrite" in capsys.readouterr().out
  readme = open(os.path.join(os.path.dirname(__file__), "..", "..", "README.md")).read()
  assert "[--overwrite]" in readme
