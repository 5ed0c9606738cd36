"""Recipes that would silently do nothing useful: warmup ratio, and the warnings at a run's start."""

import csv

import numpy as np
import pytest

from jaxpretrain import config as config_lib
from jaxpretrain.data.finetune import base
from jaxpretrain.train import loop, optim


def _train_config(**overrides):
  c = config_lib.defaults()
  config_lib.apply_overrides(c, [(f"train.{k}", v) for k, v in overrides.items()])
  return c


@pytest.mark.parametrize(
  "warmup_steps, warmup_ratio, total, expected",
  [
    (240, 0.0, 93, 93),  # more warmup than steps: capped at the run
    (10, 0.0, 93, 10),
    (240, 0.1, 93, 10),  # the ratio wins over warmup_steps: ceil(9.3)
    (0, 0.06, 1000, 60),
  ],
)
def test_warmup_steps_from_steps_or_ratio(warmup_steps, warmup_ratio, total, expected):
  c = _train_config(warmup_steps=warmup_steps, warmup_ratio=warmup_ratio)
  assert optim.warmup_steps(c.train, total) == expected


def test_the_schedule_peaks_where_the_ratio_puts_the_end_of_warmup():
  c = _train_config(warmup_ratio=0.1, learning_rate=1e-3, schedule="linear")
  schedule = optim.make_schedule(c.train, 93)
  rates = np.array([float(schedule(s)) for s in range(94)])
  assert int(rates.argmax()) == 10 and rates.max() == pytest.approx(1e-3)
  assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.0, abs=1e-9)


def _warnings(capsys):
  return [line for line in capsys.readouterr().err.splitlines() if line.startswith("jaxpretrain: warning:")]


def test_warmup_covering_the_whole_run_is_a_warning(capsys):
  loop.check_schedule(_train_config(warmup_steps=240, num_epochs=3.0, learning_rate=2e-5), 93)
  assert _warnings(capsys) == [
    "jaxpretrain: warning: train.warmup_steps=240 covers all of the run's 93 steps: the learning rate never reaches "
    "train.learning_rate=2e-05; use fewer warmup steps or train.warmup_ratio (e.g. 0.1)"
  ]
  loop.check_schedule(_train_config(warmup_steps=240, warmup_ratio=0.1), 93)
  assert _warnings(capsys) == []


def test_steps_given_beside_num_epochs_is_a_warning_only_when_the_user_gave_them(capsys):
  loop.check_schedule(_train_config(num_epochs=3.0, steps=5, warmup_steps=0), 93)
  assert _warnings(capsys) == [
    "jaxpretrain: warning: train.steps=5 is ignored: train.num_epochs=3 sets the run's length (93 steps); "
    "set train.num_epochs=0 to train for train.steps"
  ]
  recipe = config_lib.defaults()
  recipe.train.num_epochs, recipe.train.warmup_steps = 3.0, 0  # a recipe's own choice: no warning
  loop.check_schedule(recipe, 93)
  assert _warnings(capsys) == []


def _csv(path, rows):
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, ["text", "label"])
    writer.writeheader()
    writer.writerows({"text": f"review {i}", "label": i % 2} for i in range(rows))
  return str(path)


def _read(config):
  return base.read_split(config, "train", lambda spec, split, limit, seed: (list(range(limit or 40)), None))


@pytest.mark.parametrize("train_examples, kept, warned", [(16, 16, True), (40, 40, False), (0, 40, False)])
def test_a_cap_that_drops_rows_of_a_user_s_file_is_a_warning(tmp_path, capsys, train_examples, kept, warned):
  c = config_lib.defaults()
  config_lib.apply_overrides(
    c, [("data.train", _csv(tmp_path / "t.csv", 40)), ("data.eval", "x.csv"), ("data.train_examples", train_examples)]
  )
  records, _, _ = _read(c)
  assert len(records) == kept
  expected = [
    f"jaxpretrain: warning: data.train_examples=16 keeps the first 16 of the 40 train examples of {tmp_path}/t.csv "
    "(set data.train_examples=0 to use all)"
  ]
  assert _warnings(capsys) == (expected if warned else [])


def test_the_embedded_task_s_label_budget_is_no_warning(capsys):
  c = config_lib.defaults()
  config_lib.apply_overrides(c, [("data.train", "embedded"), ("data.train_examples", 16)])
  records, _, _ = _read(c)
  assert len(records) == 16 and _warnings(capsys) == []
