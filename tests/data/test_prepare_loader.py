"""prepare -> shards -> loader: exact tokens, packing invariants, order, sharding, resume, errors."""

import json
import os

import numpy as np
import pytest

from jaxpretrain.data import common
from jaxpretrain.data.pretrain import loader, prepare
from jaxpretrain.data.tokenizer import Tokenizer
from jaxpretrain.errors import UserError
from tests.data.conftest import SEQ_LEN

CLS, SEP, PAD = 2, 3, 0


def all_rows(prepared_dir, split, batch=7, **kw):
  """Every record of a split in file order, as one [n, SEQ_LEN] pair of arrays."""
  ds = loader.make_dataset(
    prepared_dir, split, global_batch_size=batch, seed=0, shuffle=False, repeat=False, drop_remainder=False, **kw
  )
  batches = list(ds)
  return (np.concatenate([b["input_ids"] for b in batches]), np.concatenate([b["segment_ids"] for b in batches]))


def pieces(ids, seg):
  """The document pieces of packed rows, in order (without [CLS]/[SEP]/[PAD])."""
  out = []
  for row_ids, row_seg in zip(ids, seg):
    for s in range(1, row_seg.max() + 1):
      piece = row_ids[row_seg == s].tolist()
      if s == 1:
        piece = piece[1:]  # the row's [CLS]
      assert piece[-1] == SEP and SEP not in piece[:-1]
      out.append(piece[:-1])
  return out


def test_packed_rows_hold_exactly_the_documents_in_order(prepared_dir, corpus):
  meta = prepare.load_metadata(prepared_dir)
  tok = Tokenizer.load(os.path.join(prepared_dir, "tokenizer"))
  assert meta["tokenizer_fingerprint"] == tok.fingerprint()
  for split in ("train", "eval"):
    docs = [d for i, d in enumerate(corpus) if common.held_out(i, 3, 0.1) == (split == "eval")]
    tokens = tok.encode_batch(docs)
    ids, seg = all_rows(prepared_dir, split)
    assert ids.shape == (meta["splits"][split]["records"], SEQ_LEN)
    assert ids.dtype == seg.dtype == np.int32
    stream = [t for p in pieces(ids, seg) for t in p]
    assert stream == [t for doc in tokens for t in doc]
    assert meta["splits"][split]["tokens"] == len(stream)
    assert meta["splits"][split]["documents"] == len(docs)
    assert loader.epoch_size(prepared_dir, split) == len(ids)


def test_packing_invariants(prepared_dir):
  ids, seg = all_rows(prepared_dir, "train")
  assert (ids[:, 0] == CLS).all() and (seg[:, 0] == 1).all()
  for row_ids, row_seg in zip(ids, seg):
    used = int((row_seg > 0).sum())
    assert (row_seg[:used] > 0).all() and (row_ids[used:] == PAD).all()
    assert (np.diff(row_seg[:used]) >= 0).all() and (np.diff(row_seg[:used]) <= 1).all()
    assert row_ids[used - 1] == SEP
    # Each piece ends with its [SEP]; a new piece starts right after one.
    starts = np.flatnonzero(np.diff(row_seg[:used])) + 1
    assert (row_ids[starts - 1] == SEP).all()
  padded = int((seg == 0).sum(axis=1).astype(bool).sum())
  assert padded <= 2 + len(ids) // 10  # rows are full but for the last of a block (or 1 slot)


def test_metadata_and_files(prepared_dir):
  meta = prepare.load_metadata(prepared_dir)
  assert meta["seq_len"] == SEQ_LEN and meta["num_shards"] == 1 and meta["source"] == "embedded"
  assert meta["special_ids"]["cls"] == CLS and meta["vocab_size"] == 600
  assert len(meta["splits"]["train"]["files"]) > 1  # records_per_shard=40 rotated files
  assert meta["splits"]["train"]["files"][0] == "train-00000-00000.array_record"
  assert os.path.isfile(os.path.join(prepared_dir, "parts", "part-00000-of-00001.json"))
  assert prepare.is_prepared(prepared_dir, SEQ_LEN)
  assert prepare.is_prepared(prepared_dir, SEQ_LEN, meta["tokenizer_fingerprint"])
  assert not prepare.is_prepared(prepared_dir, SEQ_LEN, "0" * 16)
  assert not prepare.is_prepared(prepared_dir, 64)
  assert not [n for n in os.listdir(prepared_dir) if n.startswith(".tmp")]


def batches(prepared_dir, n, **kw):
  it = iter(loader.make_dataset(prepared_dir, "train", **kw))
  return [next(it) for _ in range(n)]


def test_shuffle_is_seeded_and_reshuffles_each_epoch(prepared_dir):
  records = loader.epoch_size(prepared_dir, "train")
  kw = dict(global_batch_size=records, shuffle=True, repeat=True)
  a = batches(prepared_dir, 2, seed=1, **kw)
  b = batches(prepared_dir, 2, seed=1, **kw)
  c = batches(prepared_dir, 1, seed=2, **kw)
  ordered, _ = all_rows(prepared_dir, "train")
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x["input_ids"], y["input_ids"])
  assert not np.array_equal(a[0]["input_ids"], c[0]["input_ids"])
  assert not np.array_equal(a[0]["input_ids"], a[1]["input_ids"])  # epoch 2 is reshuffled
  for epoch in a + c:  # each epoch is a permutation of the records
    np.testing.assert_array_equal(np.sort(epoch["input_ids"], axis=0), np.sort(ordered, axis=0))
    assert sorted(map(bytes, epoch["input_ids"])) == sorted(map(bytes, ordered))


def test_order_matches_grains_shuffle_repeat_slice_batch(prepared_dir):
  import grain

  n = loader.epoch_size(prepared_dir, "train")
  for process_index in (0, 1):
    ds = loader.make_dataset(
      prepared_dir, "train", global_batch_size=10, seed=5, process_index=process_index, process_count=2
    )
    read = ds._parent._transform
    ref = grain.MapDataset.range(n).shuffle(seed=5).repeat()[process_index::2].batch(5)
    for step in (0, 1, n // 5, n // 5 + 3):
      assert read.record_indices(step).tolist() == ref[step].tolist()


def test_state_restore_is_exact(prepared_dir):
  kw = dict(global_batch_size=16, seed=3)
  it = iter(loader.make_dataset(prepared_dir, "train", **kw))
  for _ in range(5):
    next(it)
  state = it.get_state()
  json.dumps(state)  # checkpointable as JSON
  expected = [next(it) for _ in range(12)]  # crosses an epoch boundary
  resumed = iter(loader.make_dataset(prepared_dir, "train", **kw))
  resumed.set_state(state)
  for want, got in zip(expected, (next(resumed) for _ in range(12))):
    for key in ("input_ids", "segment_ids"):
      np.testing.assert_array_equal(want[key], got[key])


def test_processes_split_each_global_batch(prepared_dir):
  whole = batches(prepared_dir, 3, global_batch_size=8, seed=4)
  parts = [batches(prepared_dir, 3, global_batch_size=8, seed=4, process_index=p, process_count=2) for p in (0, 1)]
  for step in range(3):
    assert parts[0][step]["input_ids"].shape == (4, SEQ_LEN)
    both = np.concatenate([parts[0][step]["input_ids"], parts[1][step]["input_ids"]])
    assert sorted(map(bytes, both)) == sorted(map(bytes, whole[step]["input_ids"]))


def test_processes_cover_the_dataset_disjointly(prepared_dir):
  ordered, _ = all_rows(prepared_dir, "train")
  per_process = [all_rows(prepared_dir, "train", batch=6, process_index=p, process_count=3)[0] for p in range(3)]
  assert sum(len(p) for p in per_process) == len(ordered)
  assert sorted(map(bytes, np.concatenate(per_process))) == sorted(map(bytes, ordered))
  # With drop_remainder, every process gets the same number of full batches.
  counts = [
    len(
      list(
        loader.make_dataset(
          prepared_dir, "train", global_batch_size=6, seed=0, repeat=False, process_index=p, process_count=3
        )
      )
    )
    for p in range(3)
  ]
  assert counts == [len(ordered) // 6] * 3


def test_loader_errors(prepared_dir, tmp_path):
  with pytest.raises(UserError, match="not divisible"):
    loader.make_dataset(prepared_dir, "train", global_batch_size=5, seed=0, process_count=2)
  with pytest.raises(UserError, match="no split 'validation'"):
    loader.make_dataset(prepared_dir, "validation", global_batch_size=4, seed=0)
  with pytest.raises(UserError, match="not a prepared data directory"):
    loader.make_dataset(str(tmp_path), "train", global_batch_size=4, seed=0)
  with pytest.raises(UserError, match="fewer than one batch"):
    loader.make_dataset(prepared_dir, "eval", global_batch_size=10**6, seed=0, repeat=False)


def records_multiset(prepared_dir):
  """Each split's records (input_ids and segment_ids bytes), sorted."""
  out = []
  for split in ("train", "eval"):
    if loader.epoch_size(prepared_dir, split) == 0:
      out.append([])
      continue
    ids, seg = all_rows(prepared_dir, split)
    out.append(sorted(map(bytes, np.concatenate([ids, seg], axis=1))))
  return out


def test_two_workers_make_the_same_records_as_one(tmp_path, monkeypatch):
  monkeypatch.setattr(prepare, "DOCS_PER_BLOCK", 40)  # 150 documents: 4 blocks
  kw = dict(seq_len=24, vocab_size=500, eval_fraction=0.2, embedded_documents=150, records_per_shard=30, seed=1)
  one, two = str(tmp_path / "one"), str(tmp_path / "two")
  prepare.prepare("embedded", one, **kw)
  first = prepare.prepare("embedded", two, shard_index=1, num_shards=2, **kw)
  assert first["complete"] is False and not prepare.is_prepared(two, 24)
  merged = prepare.prepare("embedded", two, shard_index=0, num_shards=2, **kw)
  assert merged["complete"] is True and prepare.is_prepared(two, 24)
  meta_one = prepare.load_metadata(one)
  assert merged["tokenizer_fingerprint"] == meta_one["tokenizer_fingerprint"]
  for split in ("train", "eval"):
    for key in ("records", "tokens", "documents"):
      assert merged["splits"][split][key] == meta_one["splits"][split][key]
  assert records_multiset(one) == records_multiset(two)


def test_workers_with_different_tokenizers_are_not_merged(tmp_path, monkeypatch):
  monkeypatch.setattr(prepare, "DOCS_PER_BLOCK", 40)
  out = str(tmp_path / "out")
  kw = dict(seq_len=24, vocab_size=300, embedded_documents=100, num_shards=2)
  prepare.prepare("embedded", out, shard_index=0, **kw)
  part = os.path.join(out, "parts", "part-00000-of-00002.json")
  with open(part) as f:
    data = json.load(f)
  data["tokenizer_fingerprint"] = "something-else"
  with open(part, "w") as f:
    json.dump(data, f)
  with pytest.raises(UserError, match="different tokenizers"):
    prepare.prepare("embedded", out, shard_index=1, **kw)
  assert not os.path.exists(os.path.join(out, "metadata.json"))


def test_given_tokenizer_is_used(prepared_dir, tmp_path):
  out = str(tmp_path / "out")
  tokenizer_dir = os.path.join(prepared_dir, "tokenizer")
  meta = prepare.prepare("embedded", out, seq_len=16, vocab_size=0, tokenizer_dir=tokenizer_dir, embedded_documents=30)
  assert meta["tokenizer_fingerprint"] == Tokenizer.load(tokenizer_dir).fingerprint()


@pytest.mark.parametrize(
  "kwargs, message",
  [
    (dict(seq_len=7), "seq_len must be at least 8"),
    (dict(eval_fraction=1.0), "eval_fraction"),
    (dict(shard_index=2, num_shards=2), "shard_index 2"),
    (dict(tokenizer_dir="/no/such/tokenizer"), "tokenizer not found"),
  ],
)
def test_prepare_argument_errors(tmp_path, kwargs, message):
  args = dict(seq_len=16, vocab_size=200, embedded_documents=10)
  args.update(kwargs)
  with pytest.raises(UserError, match=message):
    prepare.prepare("embedded", str(tmp_path / "out"), **args)


def test_empty_corpus_errors(tmp_path):
  blank = tmp_path / "blank.txt"
  blank.write_text("\n \n")
  with pytest.raises(UserError, match="no text in"):
    prepare.prepare(str(blank), str(tmp_path / "out"), seq_len=16, vocab_size=100)
  with pytest.raises(UserError, match="no documents in embedded"):
    prepare.prepare("embedded", str(tmp_path / "out2"), seq_len=16, vocab_size=100, embedded_documents=0)


def test_a_failing_run_keeps_a_prepared_directory(tmp_path):
  out = str(tmp_path / "out")
  good = tmp_path / "good.txt"
  good.write_text("".join(f"document number {i} is about soup and bread\n" for i in range(60)))
  prepare.prepare(str(good), out, seq_len=16, vocab_size=100)
  before = records_multiset(out)
  bad = tmp_path / "bad.txt"  # fails while streaming, after the tokenizer was trained
  bad.write_bytes(good.read_bytes() * 20 + b"caf\xe9\n")
  for spec in (str(bad), str(tmp_path / "missing.txt")):
    with pytest.raises(UserError):
      prepare.prepare(spec, out, seq_len=16, vocab_size=100)
    assert prepare.is_prepared(out, 16)
    assert records_multiset(out) == before
  assert not [n for n in os.listdir(out) if n.startswith(".tmp")]


def test_prepare_a_tfds_dataset(tmp_path):
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=20, policy=tfds.testing.MockPolicy.USE_CODE):
    meta = prepare.prepare("tfds:imdb_reviews", str(tmp_path / "out"), seq_len=16, vocab_size=60, eval_fraction=0.0)
  assert meta["complete"] and meta["splits"]["train"]["documents"] == 20
  assert meta["source"] == "tfds:imdb_reviews"


def test_eval_split_smaller_than_a_batch_warns_once(tiny_prepared, tmp_path, capsys):
  from jaxpretrain.data.pretrain import pipeline
  from tests.run_configs import tiny_pretrain_config

  held_out = loader.epoch_size(tiny_prepared, "eval")
  config = tiny_pretrain_config(tiny_prepared, **{"eval.batch_size": 8 * (held_out // 8 + 1)})
  data = pipeline.build_pretraining(config, str(tmp_path), "bert")
  err = capsys.readouterr().err.strip().splitlines()
  assert data.eval_batches() == []
  assert len(err) == 1 and f"held-out split has {held_out} examples" in err[0] and "no evaluation" in err[0]
  config = tiny_pretrain_config(tiny_prepared, **{"eval.batch_size": 8})
  assert len(pipeline.build_pretraining(config, str(tmp_path), "bert").eval_batches()) == 1
  assert capsys.readouterr().err == ""


def test_read_ahead_keeps_order_raises_source_errors_in_place_and_stops_with_its_consumer():
  import threading

  from jaxpretrain.data.common import read_ahead

  assert list(read_ahead(range(1000), 7)) == list(range(1000))

  def failing():
    yield from range(5)
    raise UserError("source broke")

  seen = []
  with pytest.raises(UserError, match="source broke"):
    for item in read_ahead(failing(), 2):
      seen.append(item)
  assert seen == [0, 1, 2, 3, 4]

  produced = []

  def endless():
    i = 0
    while True:
      produced.append(i)
      yield i
      i += 1

  reader = read_ahead(endless(), 3)
  assert [next(reader) for _ in range(4)] == [0, 1, 2, 3]
  reader.close()  # the consumer stops early: the producer thread ends, it does not run on
  for thread in threading.enumerate():
    if thread.name == "prepare-read-ahead":
      thread.join(timeout=2)
      assert not thread.is_alive()
  assert len(produced) <= 4 + 3 + 2
