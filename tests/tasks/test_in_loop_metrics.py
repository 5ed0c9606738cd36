"""The official metrics `eval.metric` can name, from summed eval aux: Matthews correlation and F1 of
class 1 from a confusion matrix, Pearson's r from summed moments, against scikit-learn / scipy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from jaxpretrain.data.readers.labeled import regression_record
from jaxpretrain.errors import UserError
from jaxpretrain.models.config import ModelConfig
from jaxpretrain.tasks import registry
from jaxpretrain.tasks.classification import SequenceClassification, class_f1, confusion_matrix, matthews_corrcoef
from jaxpretrain.tasks.regression import SequenceRegression, moment_sums, pearson
from tests.finetune.helpers import tiny_config

RNG = np.random.default_rng(0)
CASES = {
  "two classes": (RNG.integers(0, 2, 50), RNG.integers(0, 2, 50), 2),
  "three classes": (RNG.integers(0, 3, 80), RNG.integers(0, 3, 80), 3),
  "a class never predicted": (np.array([0, 1, 2, 2, 1, 0, 2]), np.array([0, 1, 1, 1, 1, 0, 0]), 3),
  "a class absent": (np.array([0, 0, 1, 1, 0]), np.array([0, 2, 1, 1, 2]), 3),
  "constant prediction": (np.array([0, 1, 1, 0, 1]), np.ones(5, int), 2),
  "perfect": (np.array([0, 1, 2, 1]), np.array([0, 1, 2, 1]), 3),
  "inverted": (np.array([0, 1, 0, 1]), np.array([1, 0, 1, 0]), 2),
}


def _confusion(labels, predictions, num_labels):
  return confusion_matrix(jnp.asarray(labels), jnp.asarray(predictions), jnp.ones(len(labels)), num_labels)


@pytest.mark.parametrize("case", list(CASES))
def test_matthews_correlation_of_a_confusion_matrix_equals_sklearn(case):
  labels, predictions, num_labels = CASES[case]
  got = float(matthews_corrcoef(_confusion(labels, predictions, num_labels)))
  assert got == pytest.approx(skm.matthews_corrcoef(labels, predictions), abs=1e-6)


@pytest.mark.parametrize("case", [c for c in CASES if CASES[c][2] == 2])
def test_f1_of_class_1_equals_sklearn(case):
  labels, predictions, _ = CASES[case]
  got = float(class_f1(_confusion(labels, predictions, 2), 1))
  assert got == pytest.approx(skm.f1_score(labels, predictions, pos_label=1, zero_division=0.0), abs=1e-6)


def test_fixed_matrices_and_large_counts():
  # A 3-class matrix written out (rows true, columns predicted) and the same ×1000 (QQP-sized counts).
  confusion = np.array([[30, 5, 5], [4, 20, 6], [2, 3, 25]], np.float32)
  labels = np.repeat(np.repeat(np.arange(3), 3), confusion.astype(int).ravel())
  predictions = np.repeat(np.tile(np.arange(3), 3), confusion.astype(int).ravel())
  expected = skm.matthews_corrcoef(labels, predictions)
  assert float(matthews_corrcoef(jnp.asarray(confusion))) == pytest.approx(expected, abs=1e-6)
  assert float(matthews_corrcoef(jnp.asarray(confusion * 1000))) == pytest.approx(expected, abs=1e-5)
  two = np.array([[8000, 2000], [1500, 6500]], np.float32)  # tp 6500, fp 2000, fn 1500
  assert float(class_f1(jnp.asarray(two), 1)) == pytest.approx(2 * 6500 / (2 * 6500 + 2000 + 1500), abs=1e-6)


def test_classification_metrics_report_f1_for_two_classes_only():
  model = ModelConfig(vocab_size=16, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8)
  aux = {"loss_sum": 1.0, "weight": 4.0, "correct": 3.0}
  two = SequenceClassification(model, num_labels=2).metrics({**aux, "confusion": jnp.asarray([[2.0, 1], [0, 1]])})
  three = SequenceClassification(model, num_labels=3).metrics({**aux, "confusion": jnp.eye(3)})
  assert set(two) == {"loss", "accuracy", "macro_f1", "mcc", "f1"} == set(registry.spec("classification").metrics)
  assert set(three) == {"loss", "accuracy", "macro_f1", "mcc"}
  assert float(two["f1"]) == pytest.approx(skm.f1_score([0, 0, 0, 1], [0, 0, 1, 1]))


def test_eval_metric_f1_on_more_than_two_classes_is_a_user_error():
  config = tiny_config(task__name="classification", eval__metric="f1", eval__metric_mode="max")
  data = type("Data", (), {"info": {"label_names": ["a", "b", "c"]}})()
  with pytest.raises(UserError, match="^eval.metric=f1 is the F1 of class 1 of a two-class task; .* 3 classes"):
    registry.build_task(config, ModelConfig.from_config(config.model), data)


def test_pearson_from_moment_sums_over_batches_equals_scipy():
  predictions = RNG.normal(2.5, 1.0, 37).astype(np.float32)
  labels = (predictions + RNG.normal(0, 0.8, 37)).astype(np.float32)
  # Three batches of 16, the last padded with weight-0 rows, summed as the eval loop sums aux.
  padded_p, padded_l = np.resize(predictions, 48), np.resize(labels, 48)
  weights = (np.arange(48) < 37).astype(np.float32)
  parts = [moment_sums(*(jnp.asarray(a[i : i + 16]) for a in (padded_p, padded_l, weights))) for i in (0, 16, 32)]
  total = {k: sum(p[k] for p in parts) for k in parts[0]}
  total["weight"] = jnp.sum(jnp.asarray(weights))
  assert float(pearson(total)) == pytest.approx(stats.pearsonr(predictions, labels).statistic, abs=1e-5)
  constant = {**total, "sum_p": 2.0 * 37, "sum_pp": 4.0 * 37, "sum_pl": 2.0 * float(labels.sum())}
  assert float(pearson(constant)) == 0.0  # as suites.correlations scores a constant prediction


def test_regression_loss_is_the_mean_squared_error_and_metrics_name_pearson():
  model = ModelConfig(vocab_size=16, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8)
  task = SequenceRegression(model, dropout=0.0)
  batch = dict(task.dummy_batch(4, 6))
  batch["label"] = jnp.asarray([0.0, 1.0, 4.5, 2.0])
  batch["weight"] = jnp.asarray([1.0, 1.0, 1.0, 0.0])
  params = task.init(jax.random.PRNGKey(0), 6)
  loss_sum, aux = task.loss(params, batch, jax.random.PRNGKey(1), deterministic=True)
  scores = np.asarray(task.predict(params, batch))
  assert float(loss_sum) == pytest.approx(np.sum((scores[:3] - [0.0, 1.0, 4.5]) ** 2), rel=1e-5)
  assert set(task.metrics(aux)) == set(registry.spec("regression").metrics) == {"loss", "pearson"}


@pytest.mark.parametrize("value,score", [(3.8, 3.8), ("4.25", 4.25), (np.float32(1.5), 1.5), (2, 2.0)])
def test_regression_records_read_float_scores(value, score):
  record = regression_record({"sentence1": "a", "sentence2": "b", "label": value}, "f:1")
  assert record == {"text_a": "a", "text_b": "b", "label": pytest.approx(score), "where": "f:1"}


@pytest.mark.parametrize("value", ["high", True, float("nan")])
def test_a_regression_label_that_is_no_number_is_one_line(value):
  with pytest.raises(UserError, match=r"^f:2: label .* is not a number \(task.name=regression reads scores\)$"):
    regression_record({"text": "a", "label": value}, "f:2")
