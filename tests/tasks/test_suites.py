"""The suite table's official metrics on fixed predictions, against scikit-learn / scipy and by hand."""

import math

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from jaxpretrain.tasks import suites

LABELS = np.array([1, 0, 1, 1, 0, 0, 1, 0, 1, 1])
PREDS = np.array([1, 0, 0, 1, 0, 1, 1, 0, 1, 0])


def test_matthews_correlation_equals_sklearn_and_the_formula():
  tp, tn, fp, fn = 4, 3, 1, 2
  by_hand = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
  assert suites.matthews(PREDS, LABELS)["mcc"] == pytest.approx(by_hand)
  assert suites.matthews(PREDS, LABELS)["mcc"] == pytest.approx(skm.matthews_corrcoef(LABELS, PREDS))
  assert suites.matthews(np.ones(10, int), LABELS)["mcc"] == 0.0  # a constant prediction


def test_f1_of_the_positive_class_and_accuracy():
  scores = suites.f1_and_accuracy(PREDS, LABELS)
  assert scores["f1"] == pytest.approx(2 * 4 / (2 * 4 + 1 + 2))  # 2tp / (2tp + fp + fn)
  assert scores["accuracy"] == pytest.approx(0.7)
  assert scores["f1"] == pytest.approx(skm.f1_score(LABELS, PREDS))


def test_pearson_and_spearman_equal_scipy():
  gold = np.array([0.0, 1.2, 2.5, 3.1, 4.0, 5.0])
  pred = np.array([0.3, 1.0, 2.9, 2.8, 4.4, 4.1])
  scores = suites.correlations(pred, gold)
  assert scores["pearson"] == pytest.approx(stats.pearsonr(pred, gold)[0])
  assert scores["spearman"] == pytest.approx(1 - 6 * (1 + 1 + 1 + 1) / (6 * 35))  # two swapped pairs
  assert suites.correlations(np.full(6, 2.0), gold) == {"pearson": 0.0, "spearman": 0.0}


def test_every_glue_task_has_its_official_metrics():
  glue = suites.SUITES["glue"]
  assert set(glue) == {"cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"}
  two_class = np.array([0, 1, 1, 0])
  expected = {"cola": {"mcc"}, "mrpc": {"f1", "accuracy"}, "qqp": {"f1", "accuracy"}, "stsb": {"pearson", "spearman"}}
  for name, task in glue.items():
    labels = np.array([0.5, 1.5, 3.0, 4.5]) if task.num_labels == 1 else two_class
    got = task.metrics(labels if task.num_labels == 1 else two_class, labels)
    assert set(got) == expected.get(name, {"accuracy"}), name
    assert task.main in got
  assert glue["mnli"].eval_splits == {"mnli-m": "validation_matched", "mnli-mm": "validation_mismatched"}


def test_the_average_counts_each_task_once():
  scores = {
    "cola": {"cola": {"mcc": 0.5}},
    "mrpc": {"mrpc": {"f1": 0.9, "accuracy": 0.8}},
    "mnli": {"mnli-m": {"accuracy": 0.8}, "mnli-mm": {"accuracy": 0.6}},
  }
  assert suites.suite_average(scores) == pytest.approx((50 + 85 + 70) / 3)


def test_each_task_names_its_head_its_sources_and_its_columns_in_the_table():
  glue = suites.SUITES["glue"]
  assert {n for n, t in glue.items() if t.task == "regression"} == {"stsb"}
  assert glue["mrpc"].source("train") == "hf:glue/mrpc:train"
  assert glue["mnli"].source("validation_mismatched", "/data/glue") == "hf:/data/glue/mnli:validation_mismatched"
  titles = [title for t in glue.values() for title in t.titles.values()]
  assert titles[:2] == ["CoLA (MCC)", "SST-2 (acc)"] and "MNLI-m (acc)" in titles and "MNLI-mm (acc)" in titles
  assert all(t.name == name and t.train_examples > 0 for name, t in glue.items())
