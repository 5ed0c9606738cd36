"""Length buckets and length grouping of fine-tuning batches (issue 19): same results, fewer padded tokens."""

import json

import jax
import numpy as np
import pytest

from jaxpretrain import config as config_lib
from jaxpretrain.data.finetune import buckets
from jaxpretrain.data.finetune.batches import FILL, LabeledBatches, padded_batches
from jaxpretrain.models.config import ModelConfig
from jaxpretrain.tasks import registry
from jaxpretrain.train import loop, preemption
from jaxpretrain.train import step as step_lib
from tests.finetune.helpers import tiny_config

WORDS = "good bad film plot actor scene music slow fast story ending long short great awful fine".split()


def _write_jsonl(path, rows):
  path.write_text("".join(json.dumps(r) + "\n" for r in rows))
  return str(path)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
  """Classification, regression, token-classification and QA files whose rows run from 1 to ~40 words."""
  rng = np.random.default_rng(0)
  root = tmp_path_factory.mktemp("mixed")
  files = {}
  eval_sizes = [1, 2, 3, 1, 2, 3, 5, 2] + [40, 21, 13, 8, 5, 40, 3, 1] + [8, 13, 5, 8]  # batches of 8: short, long, mid
  train_sizes = rng.choice([1, 2, 3, 5, 8, 13, 21, 40], size=48)
  for split, sizes in (("train", train_sizes), ("eval", eval_sizes)):
    sentences = [list(rng.choice(WORDS, size=int(n))) for n in sizes]
    files[f"cls_{split}"] = _write_jsonl(
      root / f"cls_{split}.jsonl",
      [{"text": " ".join(s), "label": "pos" if s.count("good") >= s.count("bad") else "neg"} for s in sentences],
    )
    files[f"reg_{split}"] = _write_jsonl(
      root / f"reg_{split}.jsonl", [{"text": " ".join(s), "label": float(len(s) % 5)} for s in sentences]
    )
    files[f"tok_{split}"] = _write_jsonl(
      root / f"tok_{split}.jsonl",
      [{"tokens": s, "tags": ["B-X" if w in ("good", "bad") else "O" for w in s]} for s in sentences],
    )
    contexts = [" ".join(s[:12] + ["the", "farmer", "grows", "kiwi"]) for s in sentences]
    files[f"qa_{split}"] = _write_jsonl(
      root / f"qa_{split}.jsonl",
      [
        {"question": "what grows", "context": c, "answers": {"text": ["kiwi"], "answer_start": [c.index("kiwi")]}}
        for c in contexts
      ],
    )
  return files


def _config(mixed, kind="cls", **overrides):
  task = {"cls": "classification", "reg": "regression", "tok": "token_classification", "qa": "qa"}[kind]
  settings = {
    "task__name": task,
    "task__classifier_dropout": 0.0,
    "data__train": mixed[f"{kind}_train"],
    "data__eval": mixed[f"{kind}_eval"],
    "train__learning_rate": 1e-3,
    "train__steps": 6,
    "eval__batch_size": 8,
    "checkpoint__every_steps": 0,
    "data__doc_stride": 8,
  }
  settings.update(overrides)
  return tiny_config(**settings)


def _arrays(lengths, width=32):
  lengths = np.asarray(lengths)
  mask = (np.arange(width)[None] < lengths[:, None]).astype(np.int32)
  return {
    "input_ids": mask * 7,
    "attention_mask": mask,
    "token_type_ids": np.zeros_like(mask),
    "labels": np.where(mask == 1, 1, -100).astype(np.int32),
    "label": np.arange(len(lengths)) % 2,
  }


def test_config_defaults_are_the_batch_classes_defaults():
  d = config_lib.defaults().data
  assert (d.length_buckets, d.length_grouping) == (buckets.DEFAULT_BUCKETS, buckets.DEFAULT_GROUPING)
  assert d.length_buckets > 0 and d.length_grouping > 0  # on by default for every fine-tune


def test_grid_and_the_choice_of_lengths():
  assert buckets.grid(128).tolist() == [8, 16, 24, 32, 48, 64, 96, 128]
  assert buckets.grid(100).tolist() == [8, 16, 24, 32, 48, 64, 96, 100]  # the full width ends the grid
  assert buckets.grid(128, multiple=16).tolist() == [16, 32, 48, 64, 96, 128]
  maxima = [10, 12, 20, 30, 30, 30, 60]
  assert buckets.choose(maxima, 128, 0) == (128,)  # off
  assert buckets.choose(maxima, 128, 1) == (64,)  # one length: the first grid length holding every row
  # Two lengths: 32 for six batches and 64 for one (6*32 + 64 = 256 padded rows-lengths) beats 16|64 (2*16 + 5*64).
  assert buckets.choose(maxima, 128, 2) == (32, 64)
  assert buckets.choose(maxima, 128, 3) == (16, 32, 64)
  assert buckets.choose(maxima, 128, 8) == (16, 24, 32, 64)  # no more lengths than save padding
  assert buckets.choose([33] * 5, 128, 4) == (48,)
  assert buckets.choose([128], 128, 4) == (128,)


def test_padded_eval_batches_are_cut_to_their_bucket_in_order():
  arrays = _arrays([3, 30, 5, 6, 2, 9, 4, 20, 7])
  full = padded_batches(arrays, 4, buckets=0)
  cut = padded_batches(arrays, 4, buckets=3)
  assert [b["input_ids"].shape[1] for b in full] == [32, 32, 32]
  assert [b["input_ids"].shape[1] for b in cut] == [32, 24, 8]
  for a, b in zip(full, cut):
    length = b["input_ids"].shape[1]
    assert np.array_equal(a["label"], b["label"]) and np.array_equal(a["weight"], b["weight"])
    assert np.array_equal(a["input_ids"][:, :length], b["input_ids"]) and not a["attention_mask"][:, length:].any()
  assert cut[-1]["weight"].tolist() == [1, 0, 0, 0] and (cut[-1]["labels"][1:] == -100).all()


def test_ungrouped_buckets_keep_every_batch_and_cut_only_padding():
  lengths = np.random.default_rng(1).integers(1, 33, 37)
  full = LabeledBatches(_arrays(lengths), 8, seed=5, buckets=0, grouping=0)
  cut = LabeledBatches(_arrays(lengths), 8, seed=5, buckets=4, grouping=0)
  assert full.bucket_lengths == (32,) and len(cut.bucket_lengths) <= 4
  for _ in range(12):  # past two epoch boundaries
    a, b = next(full), next(cut)
    length = b["input_ids"].shape[1]
    assert length in cut.bucket_lengths and length >= b["attention_mask"].sum(1).max()
    assert set(a) == set(b) and all(np.array_equal(a[k][:, :length], b[k][:, :length]) for k in a if a[k].ndim == 2)
    assert np.array_equal(a["label"], b["label"]) and not a["attention_mask"][:, length:].any()


def test_grouped_epochs_see_every_example_once_in_batches_of_similar_length():
  lengths = np.random.default_rng(2).integers(1, 33, 45)
  batches = LabeledBatches(_arrays(lengths), 8, seed=3, buckets=4, grouping=50)
  ungrouped = LabeledBatches(_arrays(lengths), 8, seed=3, buckets=4, grouping=0)
  assert batches.steps_per_epoch == 6
  for epoch in range(2):
    rows = np.concatenate([batches.global_rows(epoch * 6 + i) for i in range(6)])
    assert sorted(rows[rows != FILL].tolist()) == list(range(45)) and (rows == FILL).sum() == 3
  padded = lambda it: sum(next(it)["input_ids"].size for _ in range(12))
  assert padded(batches) < 0.8 * padded(ungrouped)  # the point: fewer padded tokens
  batches.set_state({"step": 0})
  weights = [next(batches)["weight"] for _ in range(6)]
  assert sum(w.sum() for w in weights) == 45 and sorted(w.sum() for w in weights)[0] == 5  # the short batch
  again = LabeledBatches(_arrays(lengths), 8, seed=3, buckets=4, grouping=50)
  again.set_state({"step": 7})
  batches.set_state({"step": 7})
  a, b = next(again), next(batches)
  assert all(np.array_equal(a[k], b[k]) for k in a)  # a pure function of the step


def test_processes_agree_on_each_batch_length():
  lengths = np.random.default_rng(3).integers(1, 33, 40)
  whole = LabeledBatches(_arrays(lengths), 8, seed=0)
  halves = [LabeledBatches(_arrays(lengths), 8, seed=0, process_index=p, process_count=2) for p in (0, 1)]
  for _ in range(5):
    full, parts = next(whole), [next(h) for h in halves]
    assert parts[0]["input_ids"].shape == parts[1]["input_ids"].shape == (4, full["input_ids"].shape[1])
    assert np.array_equal(np.concatenate([p["input_ids"] for p in parts]), full["input_ids"])


def _predictions(state, batches) -> list:
  """`task.predict` of every real row, in order; token outputs on the row's real tokens only."""
  predict, out = jax.jit(state.task.predict), []
  for batch in batches:
    values, real = predict(state.params, batch), batch["weight"] > 0
    values = np.stack(values, -1) if isinstance(values, tuple) else np.asarray(values)  # QA: (start, end)
    if values.ndim >= 2 and values.shape[1] == batch["input_ids"].shape[1]:
      out += [row[: int(m.sum())] for row, m in zip(values[real], batch["attention_mask"][real])]
    else:
      out += list(values[real])
  return out


@pytest.mark.parametrize("kind", ["cls", "reg", "tok", "qa"])
def test_eval_of_the_same_params_is_the_same_bucketed_or_not(tmp_path, mixed, kind):
  metrics, predictions = {}, {}
  for n in (0, 4):
    config = _config(mixed, kind, data__length_buckets=n)
    data = registry.build_data(config, str(tmp_path / f"run{n}"))
    widths = {b["input_ids"].shape[1] for b in data.eval_batches()}
    assert widths == ({32} if n == 0 else {8, 16, 32} if kind != "qa" else {16, 24})
    model_config = loop.check_config(config)
    strategy = loop.create_strategy(config, model_config)
    task = registry.build_task(config, ModelConfig.from_config(config.model), data)
    state = loop.init_state(config, strategy, task, data.seq_len, 6)  # train.seed: the same parameters
    metrics[n] = loop.evaluate_batches(state, strategy.compile_eval_step(), strategy, data.eval_batches(), 0)
    predictions[n] = _predictions(state, data.eval_batches())
  assert metrics[0].keys() == metrics[4].keys() and len(metrics[0]) >= 2
  for key in metrics[0].keys() - {"pearson"}:  # Pearson's r of near-constant untrained outputs: float32 noise
    assert metrics[4][key] == pytest.approx(metrics[0][key], abs=1e-5), key
  assert len(predictions[0]) == len(predictions[4]) == 20
  for a, b in zip(predictions[0], predictions[4]):
    np.testing.assert_allclose(b, a, atol=1e-5)


def _traced(monkeypatch):
  """Counts the traces (= compilations) of the train and eval steps, with each traced batch length."""
  seen = {"train": [], "eval": []}
  train_step, eval_step = step_lib.train_step, step_lib.eval_step

  def spy_train(state, batch, rng, axis_name=None):
    seen["train"].append(batch["input_ids"].shape[-1])
    return train_step(state, batch, rng, axis_name)

  def spy_eval(state, batch, rng, axis_name=None):
    seen["eval"].append(batch["input_ids"].shape[-1])
    return eval_step(state, batch, rng, axis_name)

  monkeypatch.setattr(step_lib, "train_step", spy_train)
  monkeypatch.setattr(step_lib, "eval_step", spy_eval)
  return seen


def test_ungrouped_bucketed_fine_tune_equals_the_full_length_one(tmp_path, mixed, monkeypatch, capsys):
  seen = _traced(monkeypatch)
  full = loop.run(_config(mixed, data__length_buckets=0, data__length_grouping=0), str(tmp_path / "full"))
  assert seen == {"train": [32], "eval": [32]}
  seen["train"].clear(), seen["eval"].clear()
  capsys.readouterr()
  config = _config(mixed, data__length_buckets=4, data__length_grouping=0, eval__every_steps=3)
  cut = loop.run(config, str(tmp_path / "cut"))
  info = json.loads((tmp_path / "cut" / "data_info.json").read_text())
  used = info["length_buckets"]
  # One compilation per length used, none again (the eval in the middle of the run reuses them).
  assert sorted(seen["train"]) == sorted(set(seen["train"])) and set(seen["train"]) <= set(used["train"])
  assert len(seen["train"]) > 1 and sorted(seen["eval"]) == used["eval"]
  assert f"length buckets (tokens per row; each compiles once): train {', '.join(map(str, used['train']))}" in (
    capsys.readouterr().err
  )
  assert cut["step"] == full["step"] == 6
  for key in ("loss", "accuracy", "macro_f1"):
    assert cut["eval"][key] == pytest.approx(full["eval"][key], abs=1e-5), key
  assert cut["train"]["loss"] == pytest.approx(full["train"]["loss"], abs=1e-5)


def test_grouped_bucketed_run_resumes_exactly(tmp_path, mixed, monkeypatch):
  config = lambda: _config(mixed, train__steps=10, checkpoint__every_steps=4)  # 48 rows: 6 steps an epoch
  whole = loop.run(config(), str(tmp_path / "whole"))
  monkeypatch.setattr(preemption.PreemptionWatcher, "should_stop", lambda self, step: step >= 4)
  stopped = loop.run(config(), str(tmp_path / "split"))
  assert stopped["preempted"] and stopped["step"] == 4
  monkeypatch.undo()
  resumed = loop.run(config(), str(tmp_path / "split"))
  assert resumed["step"] == whole["step"] == 10
  assert resumed["eval"] == whole["eval"] and resumed["train"]["loss"] == whole["train"]["loss"]
  assert jax.tree.all(jax.tree.map(lambda x: x is not None, resumed["eval"]))


def test_pmap_steps_through_the_same_buckets(tmp_path, mixed):
  settings = {"data__length_buckets": 4, "data__length_grouping": 0, "train__steps": 3}
  jit = loop.run(_config(mixed, **settings), str(tmp_path / "jit"))
  pmap = loop.run(_config(mixed, mesh__strategy="pmap", **settings), str(tmp_path / "pmap"))
  for key in ("loss", "accuracy"):
    assert pmap["eval"][key] == pytest.approx(jit["eval"][key], abs=1e-5), key
