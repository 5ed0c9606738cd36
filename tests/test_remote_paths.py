"""Run files on a remote workdir or data path (`gs://...`), through `jaxpretrain.paths` and etils.epath.

`gs://` is served here by `FakeGCS`, an in-memory fsspec filesystem registered for the `gs` and
`gcs` protocols, which epath's fsspec backend then uses (TensorFlow is not installed, so epath does
not pick tf.io.gfile). Like a real bucket it refuses appends and keeps no empty directories. Orbax
writes checkpoint arrays through tensorstore, which talks to real GCS and cannot see this fake: the
end-to-end run on a `gs://` workdir therefore keeps its checkpoints in a local directory; every other
file of the run (config.json, tokenizer/, data_info.json, metrics.jsonl, tb/, data/) is remote.
"""

import json
import os

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from jaxpretrain import config as config_lib
from jaxpretrain import files, paths
from jaxpretrain.errors import UserError
from jaxpretrain.train import metrics as metrics_lib
from jaxpretrain.train import run_lock
from jaxpretrain.train.metrics import MetricsWriter, read_metrics, truncate_metrics
from tests.run_configs import tiny_pretrain_config


class FakeGCS(MemoryFileSystem):
  """An in-memory bucket store behind `gs://`: objects only (no append, no empty directories)."""

  protocol = ("gs", "gcs")
  root_marker = ""
  store = {}  # its own, not MemoryFileSystem's
  pseudo_dirs = [""]

  @classmethod
  def _strip_protocol(cls, path):
    path = str(path)
    for prefix in ("gs://", "gcs://"):
      path = path.removeprefix(prefix)
    return path.rstrip("/")

  def mkdir(self, path, create_parents=True, **kwargs):
    pass  # a bucket has no directories: one exists once an object is under it

  def makedirs(self, path, exist_ok=False):
    pass

  def _open(self, path, mode="rb", **kwargs):
    if "a" in mode:
      raise NotImplementedError("GCS objects cannot be appended to")
    return super()._open(path, mode, **kwargs)


@pytest.fixture
def gcs(tmp_path, monkeypatch):
  """`gs://` in memory, emptied for each test; the local cache of remote directories under tmp_path."""
  fsspec.register_implementation("gs", FakeGCS, clobber=True)
  fsspec.register_implementation("gcs", FakeGCS, clobber=True)
  FakeGCS.store.clear()
  monkeypatch.setenv("JAXPRETRAIN_CACHE", str(tmp_path / "cache"))
  yield FakeGCS.store
  FakeGCS.store.clear()


def _read(url: str) -> str:
  return paths.read_bytes(url).decode("utf-8")


def test_which_paths_are_remote_and_how_they_join():
  assert paths.is_remote("gs://bucket/run") and paths.is_remote("s3://bucket/run")
  assert not paths.is_remote("runs/x") and not paths.is_remote("/abs/x") and not paths.is_remote("hf:glue/sst2:train")
  assert not paths.is_remote("file:///tmp/x")  # not a store: stays what it always was
  assert paths.join("gs://bucket/run", "checkpoints", "4") == "gs://bucket/run/checkpoints/4"
  assert paths.absolute("gs://bucket/run") == "gs://bucket/run"
  assert paths.absolute("runs/x") == os.path.abspath("runs/x")
  assert paths.local_cache("gs://bucket/data/") == paths.local_cache("gs://bucket/data")
  assert paths.local_cache("gs://bucket/data") != paths.local_cache("gs://other/data")


def test_a_store_whose_filesystem_is_not_installed_is_one_line(monkeypatch):
  def missing(protocol):
    raise ImportError("Please install gcsfs to access Google Storage")

  monkeypatch.setattr(fsspec, "get_filesystem_class", missing)
  with pytest.raises(UserError, match=r"^gs://b/run: cannot reach gs:// paths: .*gcsfs.*jaxpretrain\[gcs\]"):
    paths.exists("gs://b/run")


def test_files_and_directories_on_the_store(gcs, tmp_path):
  paths.write_text("gs://b/run/a.json", '{"x": 1}')
  paths.write_text("gs://b/run/sub/b.txt", "text")
  assert paths.isdir("gs://b/run") and paths.isfile("gs://b/run/a.json") and not paths.isfile("gs://b/run")
  assert paths.listdir("gs://b/run") == ["a.json", "sub"]
  assert paths.glob("gs://b/run", "sub/*.txt") == ["gs://b/run/sub/b.txt"]
  assert paths.tree_size("gs://b/run") == len('{"x": 1}') + len("text")
  assert not any(name.endswith(".tmp") for name in gcs)  # one object write, no temporary object

  paths.download_dir("gs://b/run", str(tmp_path / "copy"))
  assert (tmp_path / "copy" / "sub" / "b.txt").read_text() == "text"
  (tmp_path / "copy" / "sub" / "c.txt").write_text("new")
  paths.upload_dir(str(tmp_path / "copy"), "gs://b/up", last=("a.json",))
  assert sorted(gcs) == ["b/run/a.json", "b/run/sub/b.txt", "b/up/a.json", "b/up/sub/b.txt", "b/up/sub/c.txt"]
  assert list(gcs)[-1] == "b/up/a.json"  # the named file went up last
  with paths.staged("gs://b/staged") as local:
    assert not paths.is_remote(local)
    with open(os.path.join(local, "vocab.txt"), "w") as f:
      f.write("[PAD]\n")
  assert _read("gs://b/staged/vocab.txt") == "[PAD]\n" and not os.path.exists(local)
  paths.rmtree("gs://b/up")
  assert not paths.exists("gs://b/up") and paths.exists("gs://b/run/a.json")


def test_files_reads_and_checks_remote_paths(gcs):
  paths.write_text("gs://b/run/data_info.json", '{"label_counts": {}}')
  assert files.read_json("gs://b/run/data_info.json", "run file") == {"label_counts": {}}
  paths.write_bytes("gs://b/bad.json", b"\xff\xfe{\x00}\x00")
  with pytest.raises(UserError, match=r"^run file gs://b/bad.json is UTF-16 text, not UTF-8"):
    files.read_json("gs://b/bad.json", "run file")
  with pytest.raises(UserError, match=r"^data.train gs://b/none.txt: not found$"):
    files.check_file("gs://b/none.txt", "data.train")
  with pytest.raises(UserError, match=r"^--workdir gs://b/bad.json is a file, expected a directory$"):
    files.check_dir("gs://b/bad.json", "--workdir", writable=True)
  assert files.check_dir("gs://b/new-run", "--workdir", writable=True) == "gs://b/new-run"  # created on first write
  with pytest.raises(UserError, match=r"^init_from gs://b/none: no such directory$"):
    files.check_dir("gs://b/none", "init_from", must_exist=True)


def test_data_files_on_the_store_are_read_like_local_ones(gcs):
  from jaxpretrain.data.finetune.kinds import CLASSIFICATION
  from jaxpretrain.data.readers import labeled, text

  paths.write_text("gs://b/corpus/a.txt", "first document\nsecond document\n")
  paths.write_text("gs://b/corpus/b.jsonl", '{"text": "third document"}\n')
  paths.write_text("gs://b/corpus/notes.md", "not a corpus file")
  assert text.resolve_files("gs://b/corpus") == ["gs://b/corpus/a.txt", "gs://b/corpus/b.jsonl"]
  assert text.resolve_files("gs://b/corpus/*.txt") == ["gs://b/corpus/a.txt"]
  docs = list(text.iter_documents("gs://b/corpus"))
  assert docs == ["first document", "second document", "third document"]
  with pytest.raises(UserError, match=r"^data file not found: gs://b/none.txt$"):
    text.resolve_files("gs://b/none.txt")

  paths.write_text("gs://b/train.jsonl", '{"text": "good", "label": 1}\n{"text": "bad", "label": 0}\n')
  records, _ = labeled.read_examples("gs://b/train.jsonl", CLASSIFICATION, split="train")
  assert [(r["text_a"], r["label"], r["where"]) for r in records] == [
    ("good", 1, "gs://b/train.jsonl:1"),
    ("bad", 0, "gs://b/train.jsonl:2"),
  ]


def test_config_json_round_trips_on_the_store(gcs):
  config = config_lib.load("configs/tiny.py")
  config_lib.apply_overrides(config, ["train.steps=7"])
  config_lib.save(config, "gs://b/run/config.json")
  assert config_lib.load_saved("gs://b/run").train.steps == 7
  with pytest.raises(UserError, match=r"^no run in gs://b/other: config.json not found$"):
    config_lib.load_saved("gs://b/other")


def test_metrics_jsonl_on_the_store_is_rewritten_whole_and_resumes(gcs, monkeypatch):
  monkeypatch.setattr(metrics_lib, "REMOTE_SYNC_SECS", 0.0)  # copy up at every row
  writer = MetricsWriter("gs://b/run", total_steps=10, progress=False)
  for step in (1, 2, 3):
    writer.write(step, {"loss": 4.0 - step})
    assert [r["step"] for r in read_metrics("gs://b/run")] == list(range(1, step + 1))  # the store has each row
  writer.write(3, {"loss": 0.5}, split="eval")
  writer.close()
  assert read_metrics("gs://b/run")[-1] == {"step": 3, "split": "eval", "loss": 0.5}
  assert [k for k in gcs if k.startswith("b/run/tb/events.out.tfevents")]  # TensorBoard events copied up

  # A resume from step 2 drops the later rows first, then logs those steps again after the kept ones.
  writer = MetricsWriter("gs://b/run", total_steps=10, initial_step=2, progress=False, keep_until=2)
  writer.write(3, {"loss": 9.0})
  writer.close()
  rows = read_metrics("gs://b/run")
  assert [(r["step"], r["loss"]) for r in rows] == [(1, 3.0), (2, 2.0), (3, 9.0)]
  assert truncate_metrics("gs://b/run", 1) == 2 and [r["step"] for r in read_metrics("gs://b/run")] == [1]


def test_remote_metrics_are_copied_up_at_most_every_sync_interval_and_at_close(gcs, monkeypatch):
  monkeypatch.setattr(metrics_lib, "REMOTE_SYNC_SECS", 3600.0)
  writer = MetricsWriter("gs://b/run", total_steps=10, progress=False)
  writer.write(1, {"loss": 1.0})
  writer.write(2, {"loss": 0.5})
  assert read_metrics("gs://b/run") == []  # not yet due
  writer.close()
  assert [r["step"] for r in read_metrics("gs://b/run")] == [1, 2]


def test_a_remote_workdir_is_not_locked_and_says_so(gcs, capsys):
  assert run_lock.acquire("gs://b/run", 0) is None
  assert "jaxpretrain: note: gs://b/run is remote and cannot be locked" in capsys.readouterr().err
  assert not gcs  # nothing written


def test_suite_files_and_plots_on_the_store(gcs, monkeypatch):
  from jaxpretrain.commands import plot, suite
  from jaxpretrain.tasks import suites

  table = suites.SUITES["glue"]
  results = {"suite": "glue", "model": "m", "init_from": "/runs/m", "tasks": {}, "average": None}
  suite._write("gs://b/suite", results, table)
  assert json.loads(_read("gs://b/suite/suite.json")) == results
  assert _read("gs://b/suite/suite.md") == suite.markdown(results, table)
  assert suite._saved_results("gs://b/suite", "glue", "/runs/m") == results  # a rerun reads it back

  monkeypatch.setattr(metrics_lib, "REMOTE_SYNC_SECS", 0.0)
  writer = MetricsWriter("gs://b/run", total_steps=2, progress=False)
  writer.write(1, {"loss": 2.0, "learning_rate": 1e-3, "tokens_per_s": 10.0})
  writer.write(2, {"loss": 1.0, "accuracy": 0.5}, split="eval")
  writer.close()
  written = plot.plot_run("gs://b/run")
  assert written == [f"gs://b/run/plots/{n}.png" for n in ("loss", "learning_rate", "throughput", "eval")]
  assert all(paths.read_bytes(p).startswith(b"\x89PNG") for p in written)


def _tiny(prepared_dir: str, **overrides):
  overrides = {"data.embedded_documents": "300", "data.records_per_shard": "200", **overrides}
  return tiny_pretrain_config(prepared_dir, **overrides)


def test_remote_prepared_data_is_prepared_locally_copied_up_and_read_from_a_local_copy(gcs, tmp_path, monkeypatch):
  from jaxpretrain.data.pretrain import pipeline

  config = _tiny("gs://b/prepared")
  local = pipeline.ensure_prepared(config, str(tmp_path / "run"), "bert")
  assert local == paths.local_cache("gs://b/prepared") and not paths.is_remote(local)
  meta = json.loads(_read("gs://b/prepared/metadata.json"))
  shards = [f for s in meta["splits"].values() for f in s["files"]]
  for name in shards:  # every shard up, byte for byte
    with open(os.path.join(local, name), "rb") as f:
      assert paths.read_bytes(f"gs://b/prepared/{name}") == f.read()
  assert paths.isfile("gs://b/prepared/tokenizer/tokenizer.json")

  # Another machine (no local copy): the run downloads what is there, and prepares nothing.
  import shutil

  shutil.rmtree(local)
  monkeypatch.setattr(pipeline, "prepare_from_config", lambda *a, **k: pytest.fail("prepared again"))
  assert pipeline.ensure_prepared(config, str(tmp_path / "run2"), "bert") == local
  assert sorted(os.listdir(local)) == sorted(paths.listdir("gs://b/prepared"))
  data = pipeline.build_pretraining(config, str(tmp_path / "run2"), "bert")
  assert data.info["prepared_dir"] == "gs://b/prepared" and next(data.train)["input_ids"].shape == (8, 32)


def test_remote_prepared_data_refuses_a_foreign_directory_and_split_preparation(gcs, tmp_path):
  from jaxpretrain.data.pretrain import pipeline

  paths.write_text("gs://b/mine/notes.txt", "the user's")
  with pytest.raises(UserError, match=r"^data.prepared_dir=gs://b/mine is a non-empty directory that jaxpretrain"):
    pipeline.prepare_from_config(_tiny("gs://b/mine"), "gs://b/mine", "bert")
  with pytest.raises(UserError, match=r"^data.prepared_dir=gs://b/new is remote: prepare it in one piece"):
    pipeline.prepare_from_config(_tiny("gs://b/new"), "gs://b/new", "bert", shard_index=0, num_shards=2)
  assert sorted(gcs) == ["b/mine/notes.txt"]


def test_pretraining_with_a_local_workdir_reads_remote_prepared_data(gcs, tmp_path):
  from jaxpretrain.train import loop

  summary = loop.run(_tiny("gs://b/prepared", **{"train.steps": "2"}), str(tmp_path / "run"))
  assert summary["step"] == 2
  assert paths.isfile("gs://b/prepared/metadata.json")
  info = json.loads((tmp_path / "run" / "data_info.json").read_text())
  assert info["prepared_dir"] == "gs://b/prepared"


@pytest.mark.starts_first
def test_pretraining_on_a_remote_workdir_writes_its_run_files_there_and_resumes(gcs, tmp_path, monkeypatch):
  from jaxpretrain.checkpoint import manager
  from jaxpretrain.train import loop

  # Orbax's tensorstore would write gs:// to real GCS: the checkpoints alone stay local here.
  checkpoints = str(tmp_path / "checkpoints")
  monkeypatch.setattr(manager, "checkpoint_dir", lambda w: checkpoints if paths.is_remote(w) else os.path.join(w, "c"))
  monkeypatch.setattr(metrics_lib, "REMOTE_SYNC_SECS", 0.0)
  workdir = "gs://b/run"
  config = _tiny("", **{"train.steps": "4"})  # prepared data in WORKDIR/data: remote too
  assert loop.run(config, workdir)["step"] == 4
  assert config_lib.load_saved(workdir).train.steps == 4
  assert json.loads(_read(f"{workdir}/data_info.json"))["prepared_dir"] == f"{workdir}/data"
  assert paths.isfile(f"{workdir}/tokenizer/tokenizer.json") and paths.isfile(f"{workdir}/data/metadata.json")
  assert [r["step"] for r in read_metrics(workdir) if "split" not in r] == [1, 2, 3, 4]
  assert paths.glob(workdir, "tb/events.out.tfevents*") and not paths.exists(f"{workdir}/.lock")
  assert os.listdir(checkpoints) == ["4"]

  config = _tiny("", **{"train.steps": "6"})
  assert loop.run(config, workdir)["step"] == 6  # resumed from step 4
  assert [r["step"] for r in read_metrics(workdir) if "split" not in r] == [1, 2, 3, 4, 5, 6]


def test_a_tokenizer_directory_on_the_store_is_read_from_a_local_copy(gcs, tmp_path):
  from jaxpretrain.data.tokenizer import Tokenizer

  texts = [f"the soup number {i} was green and the service was slow" for i in range(50)]
  tokenizer = Tokenizer.train_wordpiece(texts, 120)
  tokenizer.save(str(tmp_path / "tok"))
  paths.upload_dir(str(tmp_path / "tok"), "gs://bucket/tok")
  for spec in ("gs://bucket/tok", "hf:gs://bucket/tok"):  # data.tokenizer=DIR and =hf:DIR
    assert Tokenizer.load(spec).fingerprint() == tokenizer.fingerprint()
  with pytest.raises(
    UserError, match=r"^tokenizer not found: 'gs://bucket/nothing' \(expected a HF tokenizer directory\)$"
  ):
    Tokenizer.load("gs://bucket/nothing")


def test_commands_that_read_or_write_local_directories_only_say_so_in_one_line(gcs, tmp_path):
  from jaxpretrain.commands import suite
  from jaxpretrain.hf import exporter

  with pytest.raises(UserError, match=r"^--out=gs://bucket/hf: export reads a local run and writes a local directory"):
    exporter.export_run(str(tmp_path / "run"), "gs://bucket/hf")
  with pytest.raises(UserError, match=r"^--workdir=gs://bucket/run: export reads a local run"):
    exporter.export_run("gs://bucket/run", str(tmp_path / "hf"))
  with pytest.raises(UserError, match=r"^--data_dir=gs://bucket/glue: the saved datasets are read from a local"):
    suite.run("glue", str(tmp_path / "run"), str(tmp_path / "suite"), data_dir="gs://bucket/glue")
  assert not (tmp_path / "hf").exists() and not (tmp_path / "suite").exists()
