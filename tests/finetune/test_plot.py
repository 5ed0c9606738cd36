"""`jaxpretrain plot`: PNGs of a run's loss, learning rate, throughput and eval metrics."""

import json
import os

import pytest

from jaxpretrain import cli
from jaxpretrain.commands import plot


def test_plot_writes_one_png_per_logged_metric_family(tmp_path, capsys):
  rows = [{"step": s, "loss": 5.0 / s, "learning_rate": 1e-3, "tokens_per_s": 1000.0 + s} for s in (1, 2, 3)]
  rows.append({"step": 3, "split": "eval", "loss": 2.0, "accuracy": 0.5})
  (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  assert cli.main(["plot", "--workdir", str(tmp_path)]) == 0
  plots = json.loads(capsys.readouterr().out)["plots"]
  assert [os.path.basename(p) for p in plots] == ["loss.png", "learning_rate.png", "throughput.png", "eval.png"]
  for path in plots:
    with open(path, "rb") as f:
      assert f.read(4) == b"\x89PNG"


def test_plot_without_metrics_is_a_one_line_error(tmp_path, capsys):
  assert cli.main(["plot", "--workdir", str(tmp_path)]) == 2
  assert (
    capsys.readouterr().err.strip()
    == f"jaxpretrain: error: no metrics in {tmp_path} (expected {tmp_path}/metrics.jsonl)"
  )


@pytest.fixture
def drawn(monkeypatch):
  """{PNG name: [(x label, y label, legend texts) per axes]} of the plots written while it is active."""
  seen = {}
  save = plot._save

  def spy(fig, path):
    seen[os.path.basename(path)] = [
      (ax.get_xlabel(), ax.get_ylabel(), [t.get_text() for t in ax.get_legend().get_texts()] if ax.get_legend() else [])
      for ax in fig.axes
    ]
    return save(fig, path)

  monkeypatch.setattr(plot, "_save", spy)
  return seen


def test_every_plot_labels_its_axes_and_has_a_legend(tmp_path, drawn):
  rows = [{"step": s, "loss": 5.0 / s, "learning_rate": 1e-3, "tokens_per_s": 1000.0 + s} for s in (1, 2, 3)]
  rows.append({"step": 3, "split": "eval", "loss": 2.0, "accuracy": 0.25})  # a pretraining run's eval row
  (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  plot.plot_run(str(tmp_path))
  assert drawn == {
    "loss.png": [("step", "loss", ["train", "eval"])],
    "learning_rate.png": [("step", "learning rate", ["learning rate"])],
    "throughput.png": [("step", "tokens / s", ["tokens / s"])],
    "eval.png": [("step", "accuracy", ["eval accuracy"])],  # named after its metric, not "metric"
  }


def test_eval_plot_has_a_panel_per_metric_and_draws_baselines(tmp_path, drawn):
  rows = [{"step": s, "split": "eval", "loss": 1.0, "accuracy": 0.5 + s / 10, "macro_f1": 0.4} for s in (2, 4)]
  (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  plot.plot_run(str(tmp_path), baselines={"accuracy": ("majority class (neg)", 0.5)})
  assert drawn["eval.png"] == [
    ("", "accuracy", ["eval accuracy", "majority class (neg)"]),
    ("step", "macro_f1", ["eval macro_f1"]),
  ]


def test_confusion_plot_labels_true_and_predicted(tmp_path, drawn):
  path = plot.confusion_plot([[3, 1], [0, 4]], ["neg", "pos"], str(tmp_path / "confusion.png"))
  with open(path, "rb") as f:
    assert f.read(4) == b"\x89PNG"
  (matrix, colorbar) = drawn["confusion.png"]
  assert matrix[:2] == ("predicted label", "true label") and colorbar[1] == "examples"  # the colour bar is its key
