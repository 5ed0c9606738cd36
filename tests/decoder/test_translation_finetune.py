"""Translation fine-tuning of a pretrained decoder beats the same decoder from scratch; eval.json scores it."""

import json
import os

import jax
import numpy as np
import pytest

from jaxpretrain import cli
from jaxpretrain import config as config_lib
from jaxpretrain.commands.generate import load_run
from jaxpretrain.tasks import decoding as gen
from jaxpretrain.train import loop
from tests.decoder.helpers import tiny_gpt_config


def _translate_config(pretrained: str, **overrides):
  """The gpt_run decoder fine-tuned on 512 embedded pairs (rows of 64 tokens), equal budget either way."""
  c = tiny_gpt_config(
    "",
    **{
      "task.name": "translation",
      "data.train": "embedded",
      "data.train_examples": 512,
      "data.eval_examples": 64,
      "data.seq_len": 64,
      "data.tokenizer": os.path.join(pretrained, "tokenizer"),
      "train.steps": 30,
      "train.batch_size": 16,
      "train.warmup_steps": 3,
      "train.learning_rate": 3e-3,
      "eval.batch_size": 32,
      "checkpoint.every_steps": 30,
      "checkpoint.async_save": False,
    },
  )
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
  # A translation run exports like any decoder, and PyTorch scores a pair as we do.
  assert cli.main(["export", f"--workdir={tmp_path / 'tuned'}", f"--out={tmp_path / 'hf'}"]) == 0
  assert json.loads(capsys.readouterr().out)["architecture"] == "GPT2LMHeadModel"
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  _, model_config, params, tokenizer, _ = load_run(str(tmp_path / "tuned"))
  ids = np.array([[tokenizer.special_ids["cls"], *tokenizer.encode_batch([result["samples"][0]["source"]])[0]]])
  ours = jax.jit(lambda p, i: gen.lm_model(model_config).apply({"params": p}, {"input_ids": i}))(params, ids)
  with torch.no_grad():
    theirs = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "hf").eval()(torch.tensor(ids)).logits.numpy()
  np.testing.assert_allclose(np.asarray(ours), theirs, atol=1e-4)
