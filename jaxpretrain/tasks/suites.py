"""Downstream suites: the one table from a suite's task name to its data, head size and official metrics.

`jaxpretrain suite --suite=glue` fine-tunes every task of a suite through the same train step and
scores it here. Metrics are the official ones for each task (GLUE paper, Table 1), computed with
scikit-learn and scipy rather than re-implemented: Matthews correlation (CoLA), F1 and accuracy
(MRPC, QQP), Pearson and Spearman correlation (STS-B), matched / mismatched accuracy (MNLI), and
accuracy (SST-2, QNLI, RTE, WNLI). A task's score is the mean of its metrics; the suite's average
is the mean of the task scores, as on the GLUE leaderboard (all ×100).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> dict:
  """{"accuracy"}: the share of predicted labels equal to the gold ones."""
  from sklearn.metrics import accuracy_score

  return {"accuracy": float(accuracy_score(labels, predictions))}


def f1_and_accuracy(predictions: np.ndarray, labels: np.ndarray) -> dict:
  """{"f1", "accuracy"}: F1 of the positive class (label 1), as GLUE reports for MRPC and QQP."""
  from sklearn.metrics import f1_score

  return {"f1": float(f1_score(labels, predictions, pos_label=1, zero_division=0.0)), **accuracy(predictions, labels)}


def matthews(predictions: np.ndarray, labels: np.ndarray) -> dict:
  """{"mcc"}: Matthews correlation coefficient (CoLA); 0 when a side is constant."""
  from sklearn.metrics import matthews_corrcoef

  return {"mcc": float(matthews_corrcoef(labels, predictions))}


def correlations(predictions: np.ndarray, labels: np.ndarray) -> dict:
  """{"pearson", "spearman"}: correlation of predicted and gold scores (STS-B); 0 for a constant side."""
  from scipy import stats

  if np.ptp(predictions) == 0 or np.ptp(labels) == 0:
    return {"pearson": 0.0, "spearman": 0.0}
  return {
    "pearson": float(stats.pearsonr(predictions, labels).statistic),
    "spearman": float(stats.spearmanr(predictions, labels).statistic),
  }


@dataclasses.dataclass(frozen=True)
class SuiteTask:
  """One task of a suite.

  Attributes:
    dataset: the `hf:` data source of its training split (e.g. "hf:glue/cola").
    eval_splits: {name in the table: split}; MNLI has a matched and a mismatched one.
    text_column / text_pair_column: the input columns (pair tasks have two).
    num_labels: classes; 1 = a regression head (STS-B).
    metrics: (predictions, labels) -> {metric: value}; predictions are class ids or scores.
    main: the metric the best checkpoint is picked by.
  """

  dataset: str
  eval_splits: dict[str, str]
  text_column: str
  text_pair_column: str
  num_labels: int
  metrics: Callable[[np.ndarray, np.ndarray], dict]
  main: str


def _glue(name, text, pair, num_labels, metrics, main, eval_splits=None) -> SuiteTask:
  return SuiteTask(f"hf:glue/{name}", eval_splits or {name: "validation"}, text, pair, num_labels, metrics, main)


SUITES: dict[str, dict[str, SuiteTask]] = {
  "glue": {
    "cola": _glue("cola", "sentence", "", 2, matthews, "mcc"),
    "sst2": _glue("sst2", "sentence", "", 2, accuracy, "accuracy"),
    "mrpc": _glue("mrpc", "sentence1", "sentence2", 2, f1_and_accuracy, "f1"),
    "stsb": _glue("stsb", "sentence1", "sentence2", 1, correlations, "pearson"),
    "qqp": _glue("qqp", "question1", "question2", 2, f1_and_accuracy, "f1"),
    "mnli": _glue(
      "mnli",
      "premise",
      "hypothesis",
      3,
      accuracy,
      "accuracy",
      {"mnli-m": "validation_matched", "mnli-mm": "validation_mismatched"},
    ),
    "qnli": _glue("qnli", "question", "sentence", 2, accuracy, "accuracy"),
    "rte": _glue("rte", "sentence1", "sentence2", 2, accuracy, "accuracy"),
    "wnli": _glue("wnli", "sentence1", "sentence2", 2, accuracy, "accuracy"),
  }
}


def task_score(metrics: dict) -> float:
  """A task's score ×100: the mean of its metrics (e.g. MRPC's F1 and accuracy)."""
  return 100.0 * float(np.mean(list(metrics.values())))


def suite_average(scores: dict[str, dict]) -> float:
  """The suite's average ×100 over tasks; a task with several eval splits (MNLI-m/-mm) counts once,
  as the mean of its splits' scores.

  Args:
    scores: {task: {eval split name: {metric: value}}}.

  Returns:
    The mean task score.
  """
  per_task = [np.mean([task_score(m) for m in splits.values()]) for splits in scores.values()]
  return float(np.mean(per_task)) if per_task else float("nan")
