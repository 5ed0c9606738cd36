"""SQuAD EM/F1 agree with the official evaluation script (v2.0, whose normalization v1.1 shares) on
fixed cases. The reference functions below are the official script's, restated line for line."""

import collections
import re
import string

import pytest

from jaxpretrain.tasks.qa_postprocess import f1_score, normalize_answer, squad_scores


def official_normalize_answer(s):
  def remove_articles(text):
    regex = re.compile(r"\b(a|an|the)\b", re.UNICODE)
    return re.sub(regex, " ", text)

  def white_space_fix(text):
    return " ".join(text.split())

  def remove_punc(text):
    exclude = set(string.punctuation)
    return "".join(ch for ch in text if ch not in exclude)

  def lower(text):
    return text.lower()

  return white_space_fix(remove_articles(remove_punc(lower(s))))


def official_get_tokens(s):
  if not s:
    return []
  return official_normalize_answer(s).split()


def official_compute_exact(a_gold, a_pred):
  return int(official_normalize_answer(a_gold) == official_normalize_answer(a_pred))


def official_compute_f1(a_gold, a_pred):
  gold_toks = official_get_tokens(a_gold)
  pred_toks = official_get_tokens(a_pred)
  common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
  num_same = sum(common.values())
  if len(gold_toks) == 0 or len(pred_toks) == 0:
    return int(gold_toks == pred_toks)
  if num_same == 0:
    return 0
  precision = 1.0 * num_same / len(pred_toks)
  recall = 1.0 * num_same / len(gold_toks)
  return (2 * precision * recall) / (precision + recall)


CASES = [
  ("The Eiffel Tower", "eiffel tower"),
  ("an Apple, a Pear & THE plum!", "apple pear plum"),
  ("Denver Broncos", "the Denver Broncos"),
  ("1,000 years", "1000 years"),
  ("Saint-Étienne", "saint étienne"),
  ("  lots   of   space ", "lots of space"),
  ("anthem", "the anthem"),  # "an" inside a word is not an article
  ("red barn red", "red barn"),  # repeated tokens count once per match
  ("", ""),  # no answer vs no answer (SQuAD 2.0)
  ("something", ""),
  ("a", "the"),  # both normalize to nothing
  ("Thérèse's café", "therese's cafe"),
]


@pytest.mark.parametrize("gold, prediction", CASES)
def test_normalization_exact_match_and_f1_equal_the_official_script(gold, prediction):
  assert normalize_answer(prediction) == official_normalize_answer(prediction)
  assert float(normalize_answer(prediction) == normalize_answer(gold)) == official_compute_exact(gold, prediction)
  assert f1_score(prediction, gold) == pytest.approx(official_compute_f1(gold, prediction))


def test_scores_take_the_best_gold_answer_as_the_official_script_does():
  predictions = ["Denver", "the big red barn", "", "1,000"]
  golds = [["Denver Broncos", "Broncos"], ["red barn", "barn"], [], ["1000", "one thousand"]]
  expected_em = [max(official_compute_exact(g, p) for g in (gs or [""])) for p, gs in zip(predictions, golds)]
  expected_f1 = [max(official_compute_f1(g, p) for g in (gs or [""])) for p, gs in zip(predictions, golds)]
  scores = squad_scores(predictions, golds)
  assert scores["exact_match"] == pytest.approx(sum(expected_em) / 4)
  assert scores["f1"] == pytest.approx(sum(expected_f1) / 4)
