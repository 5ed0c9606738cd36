"""Weighted mixtures of sources: parsing, per-batch composition, order, processes, resume, prepare, a run."""

import json
import os

import numpy as np
import pytest

from jaxpretrain.data.pretrain import loader, mixture, pipeline, prepare
from jaxpretrain.data.tokenizer import Tokenizer
from jaxpretrain.errors import UserError
from tests.run_configs import tiny_pretrain_config

SEQ_LEN = 32


def write_books(path, n):
  words = "kings ships river castle dragon bread forest winter lantern harbor".split()
  path.write_text("".join(f"book {i} tells of {words[i % 10]} and {words[(3 * i) % 10]} far away\n" for i in range(n)))
  return str(path)


@pytest.fixture(scope="module")
def mix(tmp_path_factory):
  """`embedded@0.7,books.txt@0.3` prepared (the books source is small: a few steps per epoch)."""
  root = tmp_path_factory.mktemp("mix")
  books = write_books(root / "books.txt", 80)
  sources = mixture.parse(f"embedded@0.7,{books}@0.3")
  out = str(root / "out")
  mixture.prepare(
    sources, out, seq_len=SEQ_LEN, vocab_size=400, eval_fraction=0.2, embedded_documents=200, records_per_shard=50
  )
  return out


def source_dir(out, i):
  return os.path.join(out, prepare.load_metadata(out)["sources"][i]["dir"])


def batches(out, n, split="train", **kw):
  it = iter(loader.make_dataset(out, split, **kw))
  return [next(it) for _ in range(n)]


def test_parse_normalizes_weights_and_names_sources(tmp_path):
  books = write_books(tmp_path / "books.txt", 3)
  sources = mixture.parse(f" embedded@3 , {books}@1 ")
  assert [(s.spec, s.weight, s.name) for s in sources] == [("embedded", 0.75, "0-embedded"), (books, 0.25, "1-books")]
  assert mixture.parse("embedded") is None and mixture.parse(books) is None
  odd = tmp_path / "a@b.txt"
  odd.write_text("text\n")
  assert mixture.parse(str(odd)) is None  # an existing path with an @ is one source


def test_batch_rows_are_the_largest_remainder_split():
  assert mixture.batch_rows([0.5, 0.3, 0.2], 7) == [4, 2, 1]  # quotas 3.5, 2.1, 1.4
  assert mixture.batch_rows([1 / 3, 1 / 3, 1 / 3], 8) == [3, 3, 2]  # ties go to the earlier source
  assert mixture.batch_rows([0.7, 0.3], 10) == [7, 3]
  assert mixture.batch_rows([0.9, 0.1], 4) == [4, 0]
  assert mixture.batch_rows([0.05, 0.15, 0.8], 20) == [1, 3, 16]


def test_every_batch_holds_each_sources_rows_in_its_share(mix):
  rows = [set(map(bytes, np.concatenate([b["input_ids"] for b in everything(source_dir(mix, i))]))) for i in (0, 1)]
  assert not rows[0] & rows[1]
  for size in (10, 7):
    want = mixture.batch_rows([0.7, 0.3], size)
    for batch in batches(mix, 6, global_batch_size=size, seed=2):
      got = [sum(bytes(r) in rows[i] for r in batch["input_ids"]) for i in (0, 1)]
      assert got == want


def everything(prepared_dir):
  return list(loader.make_dataset(prepared_dir, "train", global_batch_size=1, seed=0, shuffle=False, repeat=False))


def test_source_rows_are_consecutive_positions_of_its_own_stream(mix):
  """Rows of source i in step s = batch s of source i read alone (B_i rows, its seed)."""
  size, seed = 10, 4
  mixed = batches(mix, 12, global_batch_size=size, seed=seed)
  start = 0
  for i, rows in enumerate(mixture.batch_rows([0.7, 0.3], size)):
    alone = batches(source_dir(mix, i), 12, global_batch_size=rows, seed=seed + i * loader.SOURCE_SEED_STRIDE)
    for m, a in zip(mixed, alone):
      np.testing.assert_array_equal(m["input_ids"][start : start + rows], a["input_ids"])
      np.testing.assert_array_equal(m["segment_ids"][start : start + rows], a["segment_ids"])
    start += rows


def test_order_is_a_function_of_seed_and_step_whatever_the_processes(mix):
  kw = dict(global_batch_size=10, seed=7)
  whole = batches(mix, 14, **kw)  # 3 rows of a ~30-record source a step: crosses its epochs
  again = batches(mix, 14, **kw)
  parts = [batches(mix, 14, process_index=p, process_count=2, **kw) for p in (0, 1)]
  for step in range(14):
    np.testing.assert_array_equal(whole[step]["input_ids"], again[step]["input_ids"])
    interleaved = np.empty_like(whole[step]["input_ids"])
    interleaved[0::2], interleaved[1::2] = parts[0][step]["input_ids"], parts[1][step]["input_ids"]
    np.testing.assert_array_equal(interleaved, whole[step]["input_ids"])
  other = batches(mix, 1, global_batch_size=10, seed=8)
  assert not np.array_equal(other[0]["input_ids"], whole[0]["input_ids"])


def test_state_restore_is_exact_across_epochs(mix):
  kw = dict(global_batch_size=20, seed=3)  # 6 rows of the small source a step
  it = iter(loader.make_dataset(mix, "train", **kw))
  for _ in range(4):
    next(it)
  state = it.get_state()
  json.dumps(state)
  expected = [next(it) for _ in range(10)]
  resumed = iter(loader.make_dataset(mix, "train", **kw))
  resumed.set_state(state)
  for want, got in zip(expected, (next(resumed) for _ in range(10))):
    for key in ("input_ids", "segment_ids"):
      np.testing.assert_array_equal(want[key], got[key])


def test_one_pass_stops_when_a_source_runs_out(mix):
  n = [loader.epoch_size(source_dir(mix, i), "train") for i in (0, 1)]
  rows = mixture.batch_rows([0.7, 0.3], 10)
  one_pass = list(loader.make_dataset(mix, "train", global_batch_size=10, seed=0, repeat=False))
  assert len(one_pass) == min(n[i] // rows[i] for i in (0, 1))
  assert loader.epoch_size(mix, "train") == sum(n)


def test_metadata_counts_and_one_shared_tokenizer(mix):
  meta = prepare.load_metadata(mix)
  shared = Tokenizer.load(os.path.join(mix, "tokenizer")).fingerprint()
  assert meta["mixture"] and meta["tokenizer_fingerprint"] == shared and prepare.is_prepared(mix, SEQ_LEN)
  assert [(s["name"], s["weight"]) for s in meta["sources"]] == [("0-embedded", 0.7), ("1-books", 0.3)]
  for i, entry in enumerate(meta["sources"]):
    own = prepare.load_metadata(source_dir(mix, i))
    assert own["tokenizer_fingerprint"] == shared and own["source"] == entry["spec"]
    for split in ("train", "eval"):
      assert entry["splits"][split] == {k: own["splits"][split][k] for k in ("documents", "tokens", "records")}
  for split in ("train", "eval"):
    for key in ("documents", "tokens", "records"):
      assert meta["splits"][split][key] == sum(s["splits"][split][key] for s in meta["sources"])
  assert meta["sources"][1]["splits"]["train"]["documents"] + meta["sources"][1]["splits"]["eval"]["documents"] == 80


def shard_times(out):
  return {
    p: os.stat(os.path.join(out, p)).st_mtime_ns
    for d, _, names in os.walk(out)
    for p in (os.path.relpath(os.path.join(d, n), out) for n in names)
    if p.endswith(".array_record")
  }


def test_rerunning_reuses_the_sources_and_new_weights_only_rewrite_the_metadata(tmp_path, mix):
  books = write_books(tmp_path / "books.txt", 40)
  tokenizer = os.path.join(mix, "tokenizer")
  kw = dict(seq_len=SEQ_LEN, vocab_size=0, tokenizer_dir=tokenizer, embedded_documents=60)
  out = str(tmp_path / "out")
  first = mixture.prepare(mixture.parse(f"embedded@1,{books}@1"), out, **kw)
  before = shard_times(out)
  again = mixture.prepare(mixture.parse(f"embedded@1,{books}@1"), out, **kw)
  reweighted = mixture.prepare(mixture.parse(f"embedded@1,{books}@3"), out, **kw)
  assert shard_times(out) == before and len(before) >= 2
  assert again == first and [s["weight"] for s in reweighted["sources"]] == [0.25, 0.75]
  assert reweighted["splits"] == first["splits"]


def test_two_workers_prepare_each_source_like_one(tmp_path, monkeypatch):
  monkeypatch.setattr(prepare, "DOCS_PER_BLOCK", 20)
  books = write_books(tmp_path / "books.txt", 70)
  sources = mixture.parse(f"embedded@2,{books}@1")
  kw = dict(seq_len=24, vocab_size=300, eval_fraction=0.2, embedded_documents=90, seed=1)
  one = mixture.prepare(sources, str(tmp_path / "one"), **kw)
  two = str(tmp_path / "two")
  first = mixture.prepare(sources, two, shard_index=1, num_shards=2, **kw)
  assert first["complete"] is False and not prepare.is_prepared(two, 24)
  merged = mixture.prepare(sources, two, shard_index=0, num_shards=2, **kw)
  assert merged["complete"] and merged["tokenizer_fingerprint"] == one["tokenizer_fingerprint"]
  assert merged["sources"] == one["sources"] and merged["splits"] == one["splits"]


@pytest.mark.parametrize(
  "spec, message",
  [
    ("embedded@abc,{books}@1", "data.train: the weight 'abc' of embedded is not a number"),
    ("embedded@0,{books}@1", "data.train: the weight '0' of embedded must be a positive number"),
    ("embedded@-1,{books}@1", "data.train: the weight '-1' of embedded must be a positive number"),
    ("embedded@1e-400,{books}@1", "data.train: the weight '1e-400' of embedded must be a positive number"),
    ("embedded@1e308,{books}@1e308", "data.train: the mixture's weights sum to inf"),
    ("embedded@1,{books}", "data.train: source 2 ({books}) of the mixture has no @WEIGHT"),
    ("embedded@1,@1", "data.train: source 2 of the mixture is empty"),
    ("embedded@1,{books}@1,", "data.train: source 3 of the mixture is empty"),
    ("embedded@1,{books}@1,embedded@2", "data.train: embedded is named twice"),
    ("{books}@1,{dot_books}@1", "is named twice"),
    ("embedded@1,{empty}@1", "data file is empty: {empty}"),
    ("embedded@1,{blank}@1", "no text in {blank}"),
    ("embedded@1,{missing}@1", "data file not found: {missing}"),
    ("embedded@1e-3,{books}@1", "gets 0 of the 8 rows of a batch"),
  ],
)
def test_bad_mixtures_are_one_line_and_write_nothing(tmp_path, spec, message):
  paths = {
    "books": write_books(tmp_path / "books.txt", 20),
    "dot_books": os.path.join(str(tmp_path), ".", "books.txt"),
    "empty": str(tmp_path / "empty.txt"),
    "blank": str(tmp_path / "blank.txt"),
    "missing": str(tmp_path / "missing.txt"),
  }
  (tmp_path / "empty.txt").write_text("")
  (tmp_path / "blank.txt").write_text("\n  \n")
  out = str(tmp_path / "prepared")
  config = tiny_pretrain_config(out, **{"data.train": spec.format(**paths), "data.embedded_documents": 20})
  with pytest.raises(UserError) as error:
    pipeline.ensure_prepared(config, str(tmp_path / "run"), "bert")
  assert message.format(**paths) in str(error.value) and "\n" not in str(error.value)
  assert not os.path.exists(out)


def test_pretraining_on_a_mixture_resumes_exactly_and_records_each_source(tmp_path):
  from jaxpretrain.train import loop
  from jaxpretrain.train.metrics import read_metrics

  books = write_books(tmp_path / "books.txt", 40)
  keys = {
    "data.train": f"embedded@0.75,{books}@0.25",  # 6 + 2 rows of each batch of 8
    "data.embedded_documents": 300,
    "data.eval_fraction": 0.2,
    "train.schedule": "constant",  # so that a run of N steps is the first half of one of 2N
  }
  prepared, n = str(tmp_path / "prepared"), 8
  loop.run(tiny_pretrain_config(prepared, **keys, **{"train.steps": 2 * n}), str(tmp_path / "whole"))
  loop.run(tiny_pretrain_config(prepared, **keys, **{"train.steps": n}), str(tmp_path / "split"))
  loop.run(tiny_pretrain_config(prepared, **keys, **{"train.steps": 2 * n}), str(tmp_path / "split"))

  def losses(name):
    return [(r["step"], r["loss"]) for r in read_metrics(str(tmp_path / name)) if "split" not in r]

  assert [s for s, _ in losses("whole")] == list(range(1, 2 * n + 1))
  assert losses("split") == losses("whole")
  meta = prepare.load_metadata(prepared)
  assert 2 * n > meta["sources"][1]["splits"]["train"]["records"] // 2  # the books source starts a new epoch
  info = json.loads((tmp_path / "whole" / "data_info.json").read_text())
  assert [(s["name"], s["weight"], s["rows_per_step"]) for s in info["mixture"]] == [
    ("0-embedded", 0.75, 6),
    ("1-books", 0.25, 2),
  ]
  for entry, source in zip(info["mixture"], meta["sources"]):
    assert entry["spec"] == source["spec"]
    assert {k: entry[k] for k in ("documents", "tokens", "records")} == {
      k: source["splits"]["train"][k] for k in ("documents", "tokens", "records")
    }
  assert info["mixture"][1]["documents"] + info["mixture"][1]["eval"]["documents"] == 40

  # Every training row of metrics.jsonl counts each source's tokens of its step (6 + 2 rows of 32).
  def source_tokens(name):
    rows = [r for r in read_metrics(str(tmp_path / name)) if "split" not in r]
    return [{k: v for k, v in r.items() if k.startswith("tokens/")} for r in rows]

  whole = source_tokens("whole")
  assert all(0 < t["tokens/0-embedded"] <= 6 * 32 and 0 < t["tokens/1-books"] <= 2 * 32 for t in whole)
  assert source_tokens("split") == whole  # the resumed run counts the same batches


def test_run_data_counts_each_sources_tokens_and_evaluates_the_mixture(tmp_path, mix):
  config = tiny_pretrain_config(mix, **{"data.train": prepare.load_metadata(mix)["source"], "train.batch_size": 10})
  config.model.vocab_size = 512
  data = pipeline.build_pretraining(config, str(tmp_path), "bert")
  train = batches(mix, 3, global_batch_size=10, seed=config.train.seed)
  for step, batch in enumerate(train):
    tokens = data.step_tokens(step)
    assert list(tokens) == ["tokens/0-embedded", "tokens/1-books"]
    assert tokens["tokens/0-embedded"] == int((batch["segment_ids"][:7] > 0).sum())
    assert tokens["tokens/1-books"] == int((batch["segment_ids"][7:] > 0).sum())
  assert data.steps_per_epoch == loader.epoch_size(mix, "train") // 10
  (evaluated,) = data.eval_batches()  # eval.batches=1 of 10 rows: 7 held-out rows of one source, 3 of the other
  for i, (start, rows) in enumerate(((0, 7), (7, 3))):
    (alone,) = batches(source_dir(mix, i), 1, "eval", global_batch_size=rows, seed=0, shuffle=False)
    np.testing.assert_array_equal(evaluated["input_ids"][start : start + rows], alone["input_ids"])


def test_a_prepared_directory_switches_between_one_source_and_a_mixture(tmp_path):
  books = write_books(tmp_path / "books.txt", 30)
  out, run = str(tmp_path / "prepared"), str(tmp_path / "run")
  keys = {"data.embedded_documents": 40}
  pipeline.ensure_prepared(tiny_pretrain_config(out, **keys, **{"data.train": books}), run, "bert")
  assert not prepare.load_metadata(out).get("mixture") and os.path.isdir(os.path.join(out, "parts"))
  config = tiny_pretrain_config(out, **keys, **{"data.train": f"embedded@1,{books}@1"})
  pipeline.ensure_prepared(config, run, "bert")
  meta = prepare.load_metadata(out)
  assert meta["mixture"] and prepare.is_prepared(out, SEQ_LEN)
  assert sorted(os.listdir(out)) == [".jaxpretrain-prepared", "metadata.json", "sources", "tokenizer"]
  before = (shard_times(out), os.stat(os.path.join(out, "metadata.json")).st_mtime_ns)
  pipeline.ensure_prepared(config, run, "bert")  # the same mixture: nothing to do
  assert (shard_times(out), os.stat(os.path.join(out, "metadata.json")).st_mtime_ns) == before
  pipeline.ensure_prepared(tiny_pretrain_config(out, **keys, **{"data.train": books}), run, "bert")
  assert prepare.load_metadata(out)["source"] == books


def test_a_mixture_refuses_a_directory_it_did_not_make(tmp_path):
  out = tmp_path / "mine"
  out.mkdir()
  (out / "notes.txt").write_text("my notes")
  config = tiny_pretrain_config(str(out), **{"data.train": f"embedded@1,{write_books(tmp_path / 'b.txt', 20)}@1"})
  with pytest.raises(UserError, match="non-empty directory that jaxpretrain did not prepare"):
    pipeline.ensure_prepared(config, str(tmp_path / "run"), "bert")
  assert os.listdir(out) == ["notes.txt"]
