"""`jaxpretrain plot`: PNGs of a run's loss, learning rate, throughput and eval metrics."""

import json
import os

from jaxpretrain import cli


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
