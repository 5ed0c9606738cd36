"""Translation fine-tuning of a pretrained decoder beats the same decoder from scratch; eval.json scores it."""
import json
import os

import pytest

from jaxpretrain import cli
from jaxpretrain import config as config_lib
from jaxpretrain.train import loop
from tests.decoder.helpers import tiny_gpt_config


def _translate_config(pretrained: str, **overrides):
  """The gpt_run decoder fine-tuned on 512 embedded pairs (rows of 64 tokens), equal budget either way."""
  c = tiny_gpt_config("", **{"task.name": "translation", "data.train": "embedded", "data.train_examples": 512,
                             "data.eval_examples": 64, "data.seq_len": 64, "data.tokenizer": os.path.join(pretrained, "tokenizer"),
                             "train.steps": 30, "train.batch_size": 16, "train.warmup_steps": 3,
                             "train.learning_rate": 3e-3, "eval.batch_size": 32, "checkpoint.every_steps": 30,
                             "checkpoint.async_save": False})
  config_lib.apply_overrides(c, list(overrides.items()))
  return c


def test_pretrained_decoder_translates_better_than_scratch(gpt_run, tmp_path, capsys):
  pretrained, _ = gpt_run
  tuned = loop.run(_translate_config(pretrained, init_from=pretrained), str(tmp_path / "tuned"))
  scratch = loop.run(_translate_config(pretrained), str(tmp_path / "scratch"))
  assert tuned["eval"]["loss"] < scratch["eval"]["loss"] - 0.3
  assert cli.main(["evaluate", f"--workdir={tmp_path / 'tuned'}"]) == 0
  capsys.readouterr()
  with open(tmp_path / "tuned" / "eval.json") as f:
    result = json.load(f)
  assert result["loss"] == pytest.approx(tuned["eval"]["loss"], rel=1e-5) and result["examples"] == 64
  assert 0 <= result["bleu"] <= 100 and 0 <= result["exact_match"] <= 1 and len(result["samples"]) == 3
