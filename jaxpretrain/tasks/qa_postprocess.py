"""SQuAD-style post-processing of start/end logits into answer texts, and EM/F1 scoring.

Post-processing follows BERT's `run_squad` (and HF's `postprocess_qa_predictions`): for every
feature (window) of an example, take the `n_best` highest start and end logits, keep spans that lie
inside the context, end after they start and are at most `max_answer_length` tokens long, score
each by start + end logit, and answer with the context characters of the best span over all the
example's windows. Scoring is the official SQuAD v2.0 script's: answers are normalized (lower
case, punctuation and articles removed, whitespace collapsed), EM is exact equality with any gold
answer, F1 is token-overlap F1 against the best-matching gold answer; both are fractions in [0, 1].
"""

from __future__ import annotations

import collections
import re
import string
from collections.abc import Sequence

import numpy as np


def best_answers(
  contexts: Sequence[str],
  feature_examples: Sequence[int],
  feature_offsets: Sequence,
  start_logits: np.ndarray,
  end_logits: np.ndarray,
  *,
  n_best: int = 20,
  max_answer_length: int = 30,
) -> list[str]:
  """The predicted answer text of every example.

  Args:
    contexts: each example's context.
    feature_examples: for every feature, the index of its example.
    feature_offsets: for every feature, per token `(char_start, char_end)` into the context, or
      None for tokens outside the context (question, special tokens, padding).
    start_logits, end_logits: [num_features, length].
    n_best: start and end candidates considered per feature.
    max_answer_length: longest answer, in tokens.

  Returns:
    One answer per example ("" when no valid span exists).
  """
  best = [(-np.inf, "") for _ in contexts]
  for f, example in enumerate(feature_examples):
    offsets = feature_offsets[f]
    starts = np.argsort(start_logits[f])[::-1][:n_best]
    ends = np.argsort(end_logits[f])[::-1][:n_best]
    for s in starts:
      for e in ends:
        if s >= len(offsets) or e >= len(offsets) or offsets[s] is None or offsets[e] is None:
          continue
        if e < s or e - s + 1 > max_answer_length:
          continue
        score = float(start_logits[f][s] + end_logits[f][e])
        if score > best[example][0]:
          best[example] = (score, contexts[example][offsets[s][0] : offsets[e][1]])
  return [text for _, text in best]


def normalize_answer(text: str) -> str:
  """Lower case, no punctuation, no articles (a, an, the), single spaces: SQuAD's normalization."""
  text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
  text = re.sub(r"\b(a|an|the)\b", " ", text)
  return " ".join(text.split())


def f1_score(prediction: str, gold: str) -> float:
  """Token-overlap F1 of two answers after normalization (1.0 if both are empty)."""
  pred_tokens, gold_tokens = normalize_answer(prediction).split(), normalize_answer(gold).split()
  if not pred_tokens or not gold_tokens:
    return float(pred_tokens == gold_tokens)
  common = collections.Counter(pred_tokens) & collections.Counter(gold_tokens)
  overlap = sum(common.values())
  if overlap == 0:
    return 0.0
  precision, recall = overlap / len(pred_tokens), overlap / len(gold_tokens)
  return 2 * precision * recall / (precision + recall)


def squad_scores(predictions: Sequence[str], golds: Sequence[Sequence[str]]) -> dict:
  """Mean exact match and F1 over examples, each the max over that example's gold answers.

  Args:
    predictions: one answer per example.
    golds: the gold answers of each example (an empty list means "no answer": gold is "").

  Returns:
    `{"exact_match": float, "f1": float}`, fractions in [0, 1].
  """
  if len(predictions) != len(golds):
    raise ValueError(f"{len(predictions)} predictions for {len(golds)} examples")
  if not predictions:
    return {"exact_match": 0.0, "f1": 0.0}
  em, f1 = [], []
  for prediction, answers in zip(predictions, golds):
    answers = list(answers) or [""]
    em.append(max(float(normalize_answer(prediction) == normalize_answer(a)) for a in answers))
    f1.append(max(f1_score(prediction, a) for a in answers))
  return {"exact_match": float(np.mean(em)), "f1": float(np.mean(f1))}
