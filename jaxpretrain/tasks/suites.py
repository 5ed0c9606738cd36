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
import os
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
    name: its name in the suite (`--tasks`, the run directory, `--data_dir`'s subdirectory).
    dataset: the `hf:` data source (e.g. "hf:glue/cola"): its `train` split and eval splits.
    eval_splits: {name in the table: split}; MNLI has a matched and a mismatched one.
    titles: {eval split name: its column in the suite's table}, e.g. "MRPC (F1/acc)".
    text_column / text_pair_column: the input columns (pair tasks have two).
    num_labels: classes; 1 = a regression head (STS-B).
    metrics: (predictions, labels) -> {metric: value}; predictions are class ids or scores.
    main: the metric the best checkpoint is picked by.
    train_examples: the size of the training split (the configs evaluate once per epoch of it).
  """

  name: str
  dataset: str
  eval_splits: dict[str, str]
  titles: dict[str, str]
  text_column: str
  text_pair_column: str
  num_labels: int
  metrics: Callable[[np.ndarray, np.ndarray], dict]
  main: str
  train_examples: int

  @property
  def task(self) -> str:
    """The `task.name` that fine-tunes it: one output is HF's regression (num_labels=1)."""
    return "regression" if self.num_labels == 1 else "classification"

  def source(self, split: str, data_dir: str = "") -> str:
    """The `hf:` spec of one split: of `dataset`, or of the saved DatasetDict `data_dir/<name>`."""
    return f"hf:{os.path.join(data_dir, self.name)}:{split}" if data_dir else f"{self.dataset}:{split}"


def _glue(name, title, text, pair, num_labels, metrics, main, train_examples, splits=None) -> SuiteTask:
  """A GLUE task; `splits` = {eval split name: (split, title)} where it has several (MNLI)."""
  splits = splits or {name: ("validation", title)}
  eval_splits, titles = {k: v[0] for k, v in splits.items()}, {k: v[1] for k, v in splits.items()}
  return SuiteTask(name, f"hf:glue/{name}", eval_splits, titles, text, pair, num_labels, metrics, main, train_examples)


# GLUE paper order (Wang et al., 2019, Table 4); training set sizes of the Hub's `glue` dataset.
SUITES: dict[str, dict[str, SuiteTask]] = {
  "glue": {
    "cola": _glue("cola", "CoLA (MCC)", "sentence", "", 2, matthews, "mcc", 8551),
    "sst2": _glue("sst2", "SST-2 (acc)", "sentence", "", 2, accuracy, "accuracy", 67349),
    "mrpc": _glue("mrpc", "MRPC (F1/acc)", "sentence1", "sentence2", 2, f1_and_accuracy, "f1", 3668),
    "qqp": _glue("qqp", "QQP (F1/acc)", "question1", "question2", 2, f1_and_accuracy, "f1", 363846),
    "stsb": _glue("stsb", "STS-B (P/S corr)", "sentence1", "sentence2", 1, correlations, "pearson", 5749),
    "mnli": _glue(
      "mnli",
      "MNLI (acc)",
      "premise",
      "hypothesis",
      3,
      accuracy,
      "accuracy",
      392702,
      {"mnli-m": ("validation_matched", "MNLI-m (acc)"), "mnli-mm": ("validation_mismatched", "MNLI-mm (acc)")},
    ),
    "qnli": _glue("qnli", "QNLI (acc)", "question", "sentence", 2, accuracy, "accuracy", 104743),
    "rte": _glue("rte", "RTE (acc)", "sentence1", "sentence2", 2, accuracy, "accuracy", 2490),
    "wnli": _glue("wnli", "WNLI (acc)", "sentence1", "sentence2", 2, accuracy, "accuracy", 635),
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
