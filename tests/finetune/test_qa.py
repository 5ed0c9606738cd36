"""Extractive QA: SQuAD post-processing and EM/F1 on hand-made cases, feature windows, a tiny run."""

import json
import os

import numpy as np
import pytest

from jaxpretrain import cli
from jaxpretrain.data.finetune.features import encode_qa
from jaxpretrain.data.tokenizer import Tokenizer
from jaxpretrain.tasks.qa_postprocess import best_answers, f1_score, normalize_answer, squad_scores
from tests.finetune.helpers import MODEL


def test_normalization_and_scores_on_hand_made_answers():
  assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
  assert normalize_answer("an apple, a pear") == "apple pear"
  assert f1_score("the big red barn", "red barn") == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))  # 0.8
  assert f1_score("blue house", "red barn") == 0.0
  assert f1_score("", "") == 1.0 and f1_score("x", "") == 0.0
  scores = squad_scores(["Paris", "the big red barn", "nothing"], [["paris", "Paris, France"], ["red barn"], ["a b"]])
  assert scores["exact_match"] == pytest.approx(1 / 3)
  assert scores["f1"] == pytest.approx((1.0 + 0.8 + 0.0) / 3)


def test_best_span_respects_context_order_length_and_windows():
  context = "alpha beta gamma delta"
  # Two windows of one example; tokens map to words, None outside the context.
  words = [(0, 5), (6, 10), (11, 16), (17, 22)]
  offsets = [[None, words[0], words[1], None], [None, words[2], words[3], None]]
  start = np.array([[9.0, 1.0, 0.0, 0.0], [0.0, 2.0, 0.5, 0.0]])  # [CLS] (position 0) is never an answer
  end = np.array([[9.0, 0.0, 1.5, 0.0], [0.0, 0.0, 2.0, 0.0]])
  # Window 0 best: "alpha beta" (1 + 1.5); window 1 best: "gamma delta" (2 + 2): the latter wins.
  assert best_answers([context], [0, 0], offsets, start, end) == ["gamma delta"]
  # One token at most: "delta" (0.5 + 2) beats "gamma" (2 + 0) and "beta" (0 + 1.5).
  assert best_answers([context], [0, 0], offsets, start, end, max_answer_length=1) == ["delta"]
  # An end before its start is never chosen: "beta".."alpha" would score 14; "beta" (6) beats "alpha" (4).
  start2, end2 = np.array([[0.0, -5.0, 5.0, 0.0]]), np.array([[0.0, 9.0, 1.0, 0.0]])
  assert best_answers([context], [0], offsets[:1], start2, end2) == ["beta"]


def test_long_context_windows_locate_the_answer():
  context = " ".join(f"w{i}" for i in range(60)) + " the answer is kiwi fruit ok"
  tokenizer = Tokenizer.train_wordpiece([context, "what is it"] * 5, vocab_size=200)
  record = {
    "id": "q1",
    "question": "what is it",
    "context": context,
    "answers": ["kiwi fruit"],
    "answer_starts": [context.index("kiwi fruit")],
    "where": "x",
  }
  arrays, examples, offsets = encode_qa([record], tokenizer, seq_len=32, doc_stride=8)
  assert len(examples) > 1 and set(examples) == {0}  # several windows of one example
  found = 0
  for f in range(len(examples)):
    s, e = int(arrays["start_positions"][f]), int(arrays["end_positions"][f])
    if s == 0:
      assert e == 0  # answer not in this window: [CLS]
      continue
    found += 1
    assert context[offsets[f][s][0] : offsets[f][e][1]] == "kiwi fruit"
  assert found >= 1


def _squad_rows(n, seed):
  rs = np.random.RandomState(seed)
  rows = []
  for i in range(n):
    name = ["kiwi", "plum", "fig", "lime"][rs.randint(4)]
    context = f"the farmer grows {name} trees near the river"
    rows.append(
      {
        "id": f"{seed}-{i}",
        "question": "what does the farmer grow",
        "context": context,
        "answers": {"text": [name], "answer_start": [context.index(name)]},
      }
    )
  return rows


def test_qa_finetune_and_evaluate_write_em_and_f1(tmp_path, capsys):
  for split, n, seed in (("train", 32, 0), ("eval", 16, 1)):
    with open(tmp_path / f"{split}.jsonl", "w") as f:
      f.write("".join(json.dumps(r) + "\n" for r in _squad_rows(n, seed)))
  workdir = str(tmp_path / "qa")
  argv = [
    "--config.task.name=qa",
    f"--config.data.train={tmp_path}/train.jsonl",
    f"--config.data.eval={tmp_path}/eval.jsonl",
    "--config.data.seq_len=32",
    "--config.data.doc_stride=8",
    "--config.train.steps=30",
    "--config.train.batch_size=8",
    "--config.train.learning_rate=3e-3",
    "--config.train.warmup_steps=2",
    "--config.train.progress=false",
    "--config.checkpoint.every_steps=0",
    *[f"--config.{k}={v}" for k, v in MODEL.items()],
  ]
  assert cli.main(["finetune", "--config=tiny", "--workdir", workdir, *argv]) == 0
  assert cli.main(["evaluate", "--workdir", workdir]) == 0
  with open(os.path.join(workdir, "eval.json")) as f:
    result = json.load(f)
  assert set(result) >= {"loss", "exact_match", "f1", "span_accuracy"} and result["examples"] == 16
  assert result["f1"] >= result["exact_match"] and result["exact_match"] >= 0.5  # a learnable 4-way span
