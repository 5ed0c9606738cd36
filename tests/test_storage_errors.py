"""A full disk (or a file-size limit, a read-only disk) is one line naming what was being written and
the OS cause, from every writer: prepare, checkpoint saves, metrics logging, export, and the CLI."""

import errno
import os
import resource
import signal
import subprocess
import sys

import pytest

from jaxpretrain import checkpoint as checkpoint_lib
from jaxpretrain.cli import main as cli_main
from jaxpretrain.errors import UserError, storage_errors, storage_failure
from jaxpretrain.train.metrics import MetricsWriter

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize(
  "error, cause",
  [
    (OSError(errno.ENOSPC, "No space left on device"), "No space left on device [errno 28]"),
    (
      ValueError("Failed writing: \"/x/d/7\": Failed to write 4 bytes: File too large [os_error_code='27']"),
      "File too large [errno 27]",
    ),
    (Exception("File too large (os error 27)"), "File too large [errno 27]"),  # tokenizers (Rust)
    (
      RuntimeError("write() failed: No space left on device; writing /x/train.array_record"),
      "No space left on device [errno 28]",
    ),
    (OSError(errno.EROFS, "Read-only file system"), "Read-only file system [errno 30]"),
    (OSError(errno.ENOENT, "No such file or directory"), None),  # a missing path is not a storage failure
    (ValueError("shapes do not match"), None),
  ],
)
def test_storage_failure_finds_the_os_cause_in_each_library_s_error(error, cause):
  assert storage_failure(error) == cause


def test_storage_failure_follows_the_chain_of_causes():
  try:
    try:
      raise OSError(errno.EDQUOT, "Disk quota exceeded")
    except OSError as inner:
      raise RuntimeError("background write failed") from inner
  except RuntimeError as outer:
    assert storage_failure(outer) == "Disk quota exceeded [errno 122]"


def test_storage_errors_names_what_was_being_written_and_passes_other_errors_on():
  with pytest.raises(UserError, match=r"^writing x failed: No space left on device \[errno 28\]$"):
    with storage_errors("writing x"):
      raise OSError(errno.ENOSPC, "No space left on device")
  with pytest.raises(KeyError):
    with storage_errors("writing x"):
      raise KeyError("a bug keeps its traceback")


def test_a_full_disk_while_logging_names_the_step_and_the_file(tmp_path, monkeypatch):
  writer = MetricsWriter(str(tmp_path), total_steps=10, progress=False)

  class FullDisk:
    def write(self, text):
      raise OSError(errno.ENOSPC, "No space left on device")

  monkeypatch.setattr(writer, "_file", FullDisk())
  with pytest.raises(
    UserError, match=r"logging step 3 to .*metrics\.jsonl failed: No space left on device \[errno 28\]"
  ):
    writer.write(3, {"loss": 1.0})


def test_the_cli_reports_an_unnamed_storage_failure_in_one_line(monkeypatch, capsys):
  import jaxpretrain.commands.plot as plot

  def full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device", "/w/loss.png")

  monkeypatch.setattr(plot, "plot_run", full_disk)
  assert cli_main(["plot", "--workdir=/w"]) == 2
  err = capsys.readouterr().err
  assert err == "jaxpretrain: error: plot stopped, a write failed: No space left on device [errno 28]\n"


def _limited(limit_bytes):
  def preexec():  # every write past limit_bytes fails with EFBIG ("File too large"), as on a full disk
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

  return preexec


def _jaxpretrain(args, limit_bytes):
  return subprocess.run(
    [sys.executable, "-m", "jaxpretrain", *args],
    cwd=REPO,
    preexec_fn=_limited(limit_bytes),
    capture_output=True,
    text=True,
    timeout=300,
  )


def _one_error_line(result) -> str:
  assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
  ours = [line for line in result.stderr.splitlines() if "jaxpretrain: error:" in line]
  assert len(ours) == 1, result.stderr[-2000:]
  return ours[0]


def test_prepare_on_a_full_disk_is_one_line_and_leaves_no_partial_shards(tmp_path):
  out = tmp_path / "prepared"
  result = _jaxpretrain(
    ["prepare", "--config=configs/tiny.py", f"--workdir={tmp_path / 'w'}", f"--config.data.prepared_dir={out}"], 300_000
  )
  line = _one_error_line(result)
  assert line.endswith(f"preparing data in {out} failed: File too large [errno 27]"), line
  assert sorted(os.listdir(out)) == [".jaxpretrain-prepared"]  # the half-written part was removed


def test_export_on_a_full_disk_leaves_out_untouched(tmp_path, tiny_prepared):
  from jaxpretrain.train import loop
  from tests.run_configs import tiny_pretrain_config

  workdir = str(tmp_path / "w")
  loop.run(tiny_pretrain_config(tiny_prepared, **{"train.steps": 4}), workdir)
  out = tmp_path / "hf"
  out.mkdir()
  (out / "mine.txt").write_text("a user's file")
  result = _jaxpretrain(["export", f"--workdir={workdir}", f"--out={out}", "--overwrite"], 65536)
  line = _one_error_line(result)
  assert line.endswith(f"exporting to {out} (left as it was) failed: File too large [errno 27]"), line
  assert sorted(os.listdir(out)) == ["mine.txt"] and sorted(os.listdir(tmp_path)) == ["hf", "w"]  # no staging left
  assert checkpoint_lib.Checkpointer(workdir, read_only=True).all_steps() == [4]
