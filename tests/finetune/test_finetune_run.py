"""Fine-tuning through `loop.run`: the one train step, epochs, keep-best, evaluate, label mapping."""

import json
import math
import os

from jaxpretrain import cli
from jaxpretrain.train import loop
from jaxpretrain.train import step as step_lib
from tests.finetune.helpers import finetune_config, tiny_config


def test_pretraining_and_finetuning_share_one_train_step(tmp_path, monkeypatch, tiny_prepared):
  traced = []
  original = step_lib.train_step

  def spy(state, batch, rng, axis_name=None):  # runs when jit traces: once per compilation
    traced.append(type(state.task).__name__)
    return original(state, batch, rng, axis_name)

  monkeypatch.setattr(step_lib, "train_step", spy)
  loop.run(tiny_config(train__steps=2, data__prepared_dir=tiny_prepared), str(tmp_path / "pre"))
  summary = loop.run(finetune_config(init_from=str(tmp_path / "pre"), train__steps=2), str(tmp_path / "ft"))
  # Traced once per batch shape: pretraining's one, then each length bucket of the fine-tune (data.length_buckets).
  assert traced[0] == "MaskedLM" and set(traced[1:]) == {"SequenceClassification"}
  assert summary["step"] == 2 and set(summary["eval"]) >= {"loss", "accuracy", "macro_f1"}


def test_finetune_epochs_keep_best_and_evaluate(tmp_path, capsys, pretrained):
  workdir = str(tmp_path / "ft")
  config = finetune_config(
    init_from=pretrained,
    train__num_epochs=1.5,
    eval__every_steps=2,
    eval__metric="accuracy",
    eval__metric_mode="max",
    checkpoint__every_steps=2,
    checkpoint__keep=1,
  )
  summary = loop.run(config, workdir)
  assert summary["steps_per_epoch"] == 4 and summary["step"] == math.ceil(1.5 * 4)  # 32 examples / batch 8
  with open(os.path.join(workdir, "data_info.json")) as f:
    info = json.load(f)
  assert info["label_names"] == ["negative", "positive"] and info["train_examples"] == 32
  evals = {}
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    for row in map(json.loads, f):
      if row.get("split") == "eval":
        evals[row["step"]] = row
  assert cli.main(["evaluate", "--workdir", workdir]) == 0
  printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  with open(os.path.join(workdir, "eval.json")) as f:
    result = json.load(f)
  assert result == printed and result["checkpoint"] == "best" and result["examples"] == 16
  best = max(evals.values(), key=lambda r: (r["accuracy"], -r["step"]))
  assert result["accuracy"] == best["accuracy"]  # the kept best step, re-scored identically
  for key in ("loss", "macro_f1"):
    assert abs(result[key] - evals[result["step"]][key]) < 1e-6
