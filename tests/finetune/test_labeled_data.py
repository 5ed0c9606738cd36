"""Labeled data: files, pairs, label vocabularies, checkpointable batches, tfds (mocked), metrics."""

import json

import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds
from sklearn.metrics import f1_score

from jaxpretrain.data.finetune.batches import LabeledBatches, padded_batches
from jaxpretrain.data.finetune.kinds import CLASSIFICATION, QA
from jaxpretrain.data.readers.labeled import read_examples
from jaxpretrain.errors import UserError
from jaxpretrain.tasks.classification import confusion_matrix, macro_f1
from jaxpretrain.tasks.registry import build_data
from tests.finetune.helpers import tiny_config


def _write(path, text):
  path.write_text(text)
  return str(path)


def test_pairs_with_string_labels_from_jsonl(tmp_path):
  rows = [
    {"text_a": f"premise {i} is here", "text_b": f"hypothesis {i}", "label": ["no", "yes", "maybe"][i % 3]}
    for i in range(12)
  ]
  train = _write(tmp_path / "train.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
  config = tiny_config(task__name="classification", data__train=train, data__eval=train, eval__batch_size=8)
  data = build_data(config, str(tmp_path / "run"))
  assert data.info["label_names"] == ["maybe", "no", "yes"] and data.info["num_labels"] == 3
  batch = data.eval_batches()[0]
  ids, types, mask = batch["input_ids"][0], batch["token_type_ids"][0], batch["attention_mask"][0]
  sep = data.tokenizer.special_ids["sep"]
  first_sep, second_sep = np.flatnonzero(ids == sep)[:2]
  assert (types[: first_sep + 1] == 0).all() and (types[first_sep + 1 : second_sep + 1] == 1).all()
  assert (types[second_sep + 1 :] == 0).all() and mask.sum() == second_sep + 1
  labels = np.concatenate([b["label"][b["weight"] > 0] for b in data.eval_batches()])
  assert labels.tolist() == [["maybe", "no", "yes"].index(r["label"]) for r in rows]


def test_csv_integer_labels_and_a_saved_mapping_wins(tmp_path):
  train = _write(tmp_path / "train.csv", "text,label\n" + "".join(f"sample {i},{i % 2}\n" for i in range(10)))
  records, declared = read_examples(train, CLASSIFICATION, split="train")
  assert declared is None and [r["label"] for r in records] == [i % 2 for i in range(10)]
  assert records[0]["where"] == f"{train}:2"
  (tmp_path / "run").mkdir()
  (tmp_path / "run" / "data_info.json").write_text(
    json.dumps({"task": "classification", "label_names": ["a", "b", "c"]})
  )
  data = build_data(
    tiny_config(task__name="classification", data__train=train, data__eval=train), str(tmp_path / "run")
  )
  assert data.info["label_names"] == ["a", "b", "c"] and data.info["num_labels"] == 3


def test_eval_label_unseen_in_training_is_an_error(tmp_path):
  train = _write(
    tmp_path / "train.jsonl", "".join(json.dumps({"text": f"t{i}", "label": "ab"[i % 2]}) + "\n" for i in range(6))
  )
  evalf = _write(tmp_path / "eval.jsonl", json.dumps({"text": "x", "label": "z"}) + "\n")
  with pytest.raises(UserError, match=r"eval.jsonl:1: label 'z' is not one of the 2 training labels"):
    build_data(tiny_config(task__name="classification", data__train=train, data__eval=evalf), str(tmp_path / "r"))


def test_batches_are_a_pure_function_of_seed_and_step():
  arrays = {"x": np.arange(10), "label": np.arange(10) % 2}
  a = LabeledBatches(arrays, 4, seed=3)
  first = [next(a)["x"].tolist() for _ in range(5)]
  assert sorted(sum(first[:2], []) + first[2][:2]) == list(range(10))  # one epoch = every row once
  b = LabeledBatches(arrays, 4, seed=3)
  b.set_state({"step": 3})
  assert next(b)["x"].tolist() == first[3] and b.get_state() == {"step": 4}
  assert LabeledBatches(arrays, 4, seed=4).rows(0).tolist() != first[0]
  halves = [LabeledBatches(arrays, 4, seed=3, process_index=i, process_count=2).rows(1).tolist() for i in (0, 1)]
  assert halves[0] + halves[1] == first[1]  # processes split each global batch


def test_padded_eval_batches_count_every_example_once():
  arrays = {"input_ids": np.arange(10)[:, None], "labels": np.ones((10, 1), np.int32)}
  batches = padded_batches(arrays, 4)
  assert len(batches) == 3 and [b["weight"].sum() for b in batches] == [4, 4, 2]
  assert batches[-1]["labels"][2:].tolist() == [[-100], [-100]]


def test_macro_f1_matches_scikit_learn():
  rs = np.random.RandomState(0)
  labels, predictions = rs.randint(0, 4, 200), rs.randint(0, 3, 200)  # class 3 is never predicted
  confusion = confusion_matrix(jnp.asarray(labels), jnp.asarray(predictions), jnp.ones(200), 5)
  assert float(macro_f1(confusion)) == pytest.approx(f1_score(labels, predictions, average="macro"), abs=1e-6)


def test_tfds_imdb_and_squad_read_offline_with_mock_data():
  with tfds.testing.mock_data(num_examples=6):
    records, declared = read_examples("tfds:imdb_reviews", CLASSIFICATION, split="eval")
    assert len(records) == 6 and declared == ["neg", "pos"] and records[0]["where"] == "tfds:imdb_reviews:validation[0]"
    assert all(isinstance(r["text_a"], str) and r["label"] in (0, 1) for r in records)
    qa, _ = read_examples("tfds:squad", QA, split="train", limit=4)
    assert len(qa) == 4 and all(0 < len(r["answer_starts"]) <= len(r["answers"]) for r in qa)


def test_tfds_unknown_name():
  with pytest.raises(UserError, match="unknown tfds dataset 'no_such_dataset_xyz'"):
    read_examples("tfds:no_such_dataset_xyz", CLASSIFICATION, split="train")
