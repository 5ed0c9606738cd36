"""Run safety: a resume checks what the run was trained on, one run per workdir, metrics rows once
per step after a crash, a limit on consecutive skipped steps, and what a resume says it does."""

import fcntl
import json
import os
import shutil

import pytest

from jaxpretrain import checkpoint as checkpoint_lib
from jaxpretrain import config as config_lib
from jaxpretrain.errors import UserError
from jaxpretrain.train import loop, run_lock
from jaxpretrain.train.metrics import read_metrics
from tests.run_configs import tiny_pretrain_config

pytestmark = pytest.mark.xdist_group("run_safety")  # shares its module fixtures on one worker


@pytest.fixture(scope="module")
def four_step_run(tmp_path_factory, tiny_prepared):
  """A finished 4-step run with a checkpoint at step 4 (copied per test)."""
  workdir = str(tmp_path_factory.mktemp("run") / "w")
  loop.run(tiny_pretrain_config(tiny_prepared, **{"train.steps": 4}), workdir)
  return workdir


@pytest.fixture()
def run4(four_step_run, tmp_path):
  target = str(tmp_path / "w")
  shutil.copytree(four_step_run, target)
  if os.path.exists(os.path.join(target, ".lock")):
    os.remove(os.path.join(target, ".lock"))
  return target


def _steps(workdir):
  return checkpoint_lib.Checkpointer(workdir, read_only=True).all_steps()


def _meta(workdir, step):
  ckpt = checkpoint_lib.Checkpointer(workdir, read_only=True)
  try:
    return ckpt.read_meta(step)
  finally:
    ckpt.close()


def test_checkpoint_meta_records_the_fingerprint(four_step_run):
  fp = _meta(four_step_run, 4)["fingerprint"]
  assert fp["data.train"] == "embedded" and fp["data.seq_len"] == 32 and fp["data.packing"] == "bert"
  assert len(fp["tokenizer"]) == 16
  assert _meta(four_step_run, 4)["total_steps"] == 4


def test_a_fine_tunes_batch_order_is_part_of_its_fingerprint():
  """`data.length_grouping` orders a fine-tuning run's batches: changing it on resume would replay
  or skip examples, so it is checked like the data source (and ignored for pretraining)."""
  config = config_lib.defaults()
  config.task.name, config.data.length_grouping = "classification", 50
  saved = loop.fingerprint(config)
  assert saved["data.length_grouping"] == 50
  config.data.length_grouping = 0
  with pytest.raises(UserError, match=r"on data.length_grouping=50, the config now says data.length_grouping=0"):
    loop.check_resume(config, {"fingerprint": saved}, 8, loop.fingerprint(config))
  config.train.allow_data_change = True
  assert loop.check_resume(config, {"fingerprint": saved}, 8, loop.fingerprint(config))[0]["step"] == 8
  config.task.name = "mlm"
  assert "data.length_grouping" not in loop.fingerprint(config)


def test_changed_data_train_on_resume_is_an_error_before_training(run4, tiny_prepared, tmp_path):
  corpus = tmp_path / "corpus.txt"
  corpus.write_text("another corpus\n" * 50)
  rows = read_metrics(run4)
  config = tiny_pretrain_config(tiny_prepared, **{"train.steps": 6, "data.train": str(corpus)})
  with pytest.raises(UserError) as info:
    loop.run(config, run4)
  message = info.value.args[0]
  assert "\n" not in message
  assert "trained on data.train=embedded (tokenizer " in message
  assert f"the config now says data.train={corpus}" in message and "train.allow_data_change" in message
  assert _steps(run4) == [4] and read_metrics(run4) == rows  # nothing trained, nothing logged


def test_a_continuation_on_changed_data_is_allowed_by_the_key_and_recorded(run4, tiny_prepared, tmp_path, capsys):
  corpus = tmp_path / "corpus.txt"
  corpus.write_text("another corpus\n" * 50)
  overrides = {"train.steps": 6, "data.train": str(corpus), "train.allow_data_change": True}
  summary = loop.run(tiny_pretrain_config(tiny_prepared, **overrides), run4)
  assert summary["step"] == 6
  err = capsys.readouterr().err
  assert "train.allow_data_change=true" in err and "data.train=embedded" in err
  meta = _meta(run4, 6)
  assert meta["fingerprint"]["data.train"] == str(corpus)
  assert [c["step"] for c in meta["data_changes"]] == [4]
  assert json.load(open(os.path.join(run4, "config.json")))["train"]["allow_data_change"] is True
  # The continuation is now what the run was trained on: resuming it needs no key.
  loop.run(tiny_pretrain_config(tiny_prepared, **{"train.steps": 7, "data.train": str(corpus)}), run4)


def test_a_swapped_tokenizer_on_resume_is_an_error(run4, tmp_path):
  from jaxpretrain.data.pretrain import prepare

  other = str(tmp_path / "other")  # the same source re-prepared from other documents: another vocabulary
  prepare.prepare(
    "embedded", other, seq_len=32, vocab_size=512, eval_fraction=0.05, embedded_documents=150, records_per_shard=200
  )
  with pytest.raises(UserError, match=r"\(tokenizer [0-9a-f]{16}\), the config now says .*\(tokenizer [0-9a-f]{16}\)"):
    loop.run(tiny_pretrain_config(other, **{"train.steps": 6}), run4)
  assert _steps(run4) == [4]


def test_changed_batch_size_is_an_error_unless_allowed(run4, tiny_prepared, capsys):
  with pytest.raises(UserError, match=r"train\.batch_size=8, the config now says 16"):
    loop.run(tiny_pretrain_config(tiny_prepared, **{"train.steps": 6, "train.batch_size": 16}), run4)
  assert _steps(run4) == [4]
  capsys.readouterr()
  overrides = {"train.steps": 6, "train.batch_size": 16, "train.allow_data_change": True}
  assert loop.run(tiny_pretrain_config(tiny_prepared, **overrides), run4)["step"] == 6
  assert "train.batch_size=8, the config now says 16" in capsys.readouterr().err


def test_resume_says_so_and_warns_once_about_a_longer_schedule(run4, tiny_prepared, capsys):
  loop.run(tiny_pretrain_config(tiny_prepared, **{"train.steps": 6}), run4)
  err = capsys.readouterr().err
  assert f"resuming from step 4 ({os.path.join(os.path.abspath(run4), 'checkpoints', '4')})" in err
  schedule = [line for line in err.splitlines() if "re-stretched" in line]
  assert len(schedule) == 1 and "with 6 total steps where the run had 4" in schedule[0]


def test_a_finished_run_has_nothing_to_do(run4, tiny_prepared, capsys):
  rows = read_metrics(run4)
  summary = loop.run(tiny_pretrain_config(tiny_prepared, **{"train.steps": 4}), run4)
  err = capsys.readouterr().err
  assert "is finished (checkpoint step 4, train.steps=4): nothing to do" in err and "resuming" not in err
  assert summary["step"] == 4 and summary["eval"] and summary["train"]["loss"] == rows_loss(rows, 4)
  assert read_metrics(run4) == rows and _steps(run4) == [4]  # no second eval row, no new checkpoint


def rows_loss(rows, step):
  return next(r["loss"] for r in rows if r["step"] == step and "split" not in r)


def test_resume_after_a_crash_logs_each_step_once(tmp_path, tiny_prepared):
  workdir = str(tmp_path / "w")
  loop.run(tiny_pretrain_config(tiny_prepared, **{"train.steps": 8}), workdir)
  # A crash after logging steps 5..8 but before saving step 8: the resume trains 5..8 again.
  shutil.rmtree(os.path.join(checkpoint_lib.checkpoint_dir(workdir), "8"))
  with open(os.path.join(workdir, "metrics.jsonl"), "a") as f:
    f.write('{"step": 9, "lo')  # torn by the crash
  loop.run(tiny_pretrain_config(tiny_prepared, **{"train.steps": 8}), workdir)
  rows = read_metrics(workdir)
  assert [r["step"] for r in rows if "split" not in r] == list(range(1, 9))
  assert [r["step"] for r in rows if r.get("split") == "eval"] == [8]


def test_a_second_run_on_a_locked_workdir_is_an_error_naming_the_holder(tmp_path, tiny_prepared):
  workdir = tmp_path / "w"
  workdir.mkdir()
  fd = os.open(workdir / ".lock", os.O_RDWR | os.O_CREAT)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(fd, b"pid 4242 on somehost\n")
    with pytest.raises(UserError, match=r"is in use by another run \(pid 4242 on somehost holds .*\.lock\)"):
      loop.run(tiny_pretrain_config(tiny_prepared), str(workdir))
  finally:
    os.close(fd)
  assert not (workdir / "checkpoints").exists() and not (workdir / "metrics.jsonl").exists()


def test_the_lock_is_held_for_the_run_and_a_stale_one_is_taken_over(tmp_path, tiny_prepared, capsys, monkeypatch):
  workdir = tmp_path / "w"
  workdir.mkdir()
  (workdir / ".lock").write_text("pid 999999 on gonehost\n")  # a crashed holder: no flock held
  seen = []
  original = loop.train

  def train(run):
    with pytest.raises(UserError, match=f"pid {os.getpid()}"):
      run_lock.WorkdirLock(str(workdir))  # held while the run trains
    assert run_lock.acquire(str(workdir), process_index=1) is None  # other processes take none
    seen.append(True)
    return original(run)

  monkeypatch.setattr(loop, "train", train)
  loop.run(tiny_pretrain_config(tiny_prepared, **{"train.steps": 2}), str(workdir))
  assert seen
  assert "pid 999999 on gonehost" in capsys.readouterr().err
  assert (workdir / ".lock").read_text() == ""  # released: no holder left behind
  run_lock.WorkdirLock(str(workdir)).release()


def test_consecutive_skips_stop_the_run_with_an_error(tmp_path, tiny_prepared, capsys):
  overrides = {
    "train.learning_rate": 1e25,
    "train.max_grad_norm": 0.0,
    "train.warmup_steps": 0,
    "train.on_nonfinite": "skip",
    "train.max_consecutive_skips": 3,
    "checkpoint.every_steps": 1,
  }
  workdir = str(tmp_path / "w")
  with pytest.raises(UserError, match=r"train\.max_consecutive_skips=3\); stopping") as info:
    loop.run(tiny_pretrain_config(tiny_prepared, **overrides), workdir)
  message = info.value.args[0]
  first, last = (int(x) for x in message.split("steps ")[1].split(" ")[0].split("-"))
  assert last - first + 1 == 3
  saved = _steps(workdir)
  assert all(s < last for s in saved)
  assert (f"the latest checkpoint is step {max(saved)}" if saved else "no checkpoint was written") in message
  notes = [line for line in capsys.readouterr().err.splitlines() if "update skipped" in line]
  assert len(notes) == 3 and notes[-1].endswith("(3 in a row)")


def test_new_keys_have_defaults_and_are_checked():
  c = config_lib.defaults()
  assert c.train.allow_data_change is False and c.train.max_consecutive_skips == 10
  c.train.max_consecutive_skips = 0
  with pytest.raises(UserError, match="train.max_consecutive_skips=0 must be an integer >= 1"):
    loop.validate(c)
