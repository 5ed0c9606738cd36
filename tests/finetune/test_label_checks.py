"""Integer labels are checked against the data, and `eval.metric` against what the task reports."""

import jax
import pytest

from jaxpretrain import cli
from jaxpretrain.data.finetune.features import label_names
from jaxpretrain.errors import UserError
from jaxpretrain.models.config import ModelConfig
from jaxpretrain.tasks import registry
from tests.finetune.helpers import tiny_config
from tests.finetune.test_errors import TINY, _fails, _jsonl
from tests.tasks.test_registry import _config, _fake_data


def _where(labels):
  return [f"train.csv:{i + 2}" for i in range(len(labels))]


def test_one_stray_integer_label_is_an_error_not_an_eight_class_head():
  labels = [0, 1, 1, 0, 7, 1]
  with pytest.raises(UserError) as e:
    label_names(labels, where=_where(labels))
  message = str(e.value)
  assert "\n" not in message
  assert "label 7 (train.csv:6) is outside" in message and "0..2" in message and "set task.num_labels" in message


def test_inferred_integer_labels_must_start_at_zero():
  with pytest.raises(UserError, match=r"label 2 \(train\.csv:3\) is outside \(0 never occurs\)"):
    label_names([1, 2], where=_where([1, 2]))


def test_contiguous_integer_labels_infer_their_count():
  assert label_names([2, 0, 1, 1]) == ["0", "1", "2"]
  assert label_names([1, 0], num_labels=3) == ["0", "1", "2"]  # a declared count may exceed the data's


@pytest.mark.parametrize(
  "labels, message",
  [
    ([0, 1, 5], r"^train\.csv:4: label 5 is outside task\.num_labels=2 \(ids 0\.\.1\)$"),
    ([0, 1, -1, 3], r"^labels outside task\.num_labels=2 \(ids 0\.\.1\): -1 \(train\.csv:4\), 3 \(train\.csv:5\)$"),
  ],
)
def test_integer_labels_outside_num_labels(labels, message):
  with pytest.raises(UserError, match=message):
    label_names(labels, num_labels=2, where=_where(labels))


def test_stray_label_through_the_cli_names_value_and_row(capsys, tmp_path):
  path = tmp_path / "train.csv"
  rows = ["text,label"] + [f"review number {i},{i % 2}" for i in range(12)] + ["a stray review,7"]
  path.write_text("\n".join(rows) + "\n")
  _fails(
    capsys,
    ["finetune", "--workdir", str(tmp_path / "ft"), *TINY, f"--config.data.train={path}"],
    f"label 7 ({path}:14) is outside",
  )
  assert not (tmp_path / "ft" / "config.json").exists()


def test_stray_integer_tag_in_token_classification(capsys, tmp_path):
  rows = [{"tokens": ["a", "b"], "ner_tags": [0, 1]}] * 10 + [{"tokens": ["c", "d"], "ner_tags": [0, 9]}]
  data = _jsonl(tmp_path / "ner.jsonl", rows)
  _fails(
    capsys,
    [
      "finetune",
      "--workdir",
      str(tmp_path / "ft"),
      *TINY,
      "--config.task.name=token_classification",
      f"--config.data.train={data}",
    ],
    f"label 9 ({data}:11) is outside",
  )


# --- eval.metric ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(registry.TASKS))
def test_the_table_lists_the_metrics_each_task_reports(name):
  """`TaskSpec.metrics` is exactly what `Task.metrics` returns (what eval rows and keep-best see)."""
  config = _config(name)
  data = _fake_data()
  data.info["label_names"] = ["O", "B-X"]  # two classes: classification's `f1` (of class 1) is a two-class metric
  task = registry.build_task(config, ModelConfig.from_config(config.model), data)
  params = jax.eval_shape(lambda: task.init(jax.random.PRNGKey(0), 16))
  batch = task.dummy_batch(2, 16)
  aux = jax.eval_shape(lambda p, b: task.loss(p, b, jax.random.PRNGKey(0), deterministic=True)[1], params, batch)
  reported = jax.eval_shape(task.metrics, aux)
  assert set(reported) == set(registry.spec(name).metrics)


def test_an_unknown_eval_metric_names_it_and_the_available_ones():
  config = tiny_config(task__name="classification", eval__metric="bleu")
  with pytest.raises(UserError, match=r"^eval\.metric='bleu'.*choose one of loss, accuracy, macro_f1, mcc, f1$"):
    registry.check_eval_metric(config)
  registry.check_eval_metric(tiny_config(task__name="qa", eval__metric="span_accuracy"))


def test_an_unknown_eval_metric_fails_before_anything_is_written(capsys, tmp_path):
  workdir = tmp_path / "ft"
  _fails(
    capsys,
    ["finetune", "--workdir", str(workdir), *TINY, "--config.eval.metric=pearson", "--config.eval.every_steps=1"],
    "eval.metric='pearson'",
    "choose one of loss, accuracy, macro_f1, mcc, f1",
  )
  assert not workdir.exists()


def test_pretraining_rejects_a_fine_tuning_metric(capsys, tmp_path):
  code = cli.main(
    ["pretrain", "--config=configs/tiny.py", "--workdir", str(tmp_path / "pt"), "--config.eval.metric=macro_f1"]
  )
  err = capsys.readouterr().err
  assert code == 2 and "eval.metric='macro_f1'" in err and "choose one of loss, accuracy" in err, err
