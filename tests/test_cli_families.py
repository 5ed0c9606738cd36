"""`jaxpretrain pretrain` end to end with configs/modernbert_tiny.py and configs/llama_tiny.py (the
loss falls), then `finetune` from the ModernBERT run and `generate` from the Llama run."""

import json

import numpy as np
import pytest

from jaxpretrain import checkpoint as checkpoint_lib
from jaxpretrain.cli import main

pytestmark = pytest.mark.starts_first  # two pretraining runs: CPU-minutes


def _pretrain(tmp_path_factory, name):
  workdir = tmp_path_factory.mktemp(name) / "run"
  code = main(
    [
      "pretrain",
      f"--config=configs/{name}.py",
      f"--workdir={workdir}",
      "--config.train.progress=false",
      "--config.data.embedded_documents=3000",
      "--config.data.eval_fraction=0.05",
    ]
  )
  assert code == 0
  return workdir


@pytest.fixture(scope="module")
def modernbert_run(tmp_path_factory):
  return _pretrain(tmp_path_factory, "modernbert_tiny")


@pytest.fixture(scope="module")
def llama_run(tmp_path_factory):
  return _pretrain(tmp_path_factory, "llama_tiny")


def _rows(workdir):
  return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("run", ["modernbert_run", "llama_run"])
def test_pretraining_loss_falls(run, request):
  workdir = request.getfixturevalue(run)
  rows = _rows(workdir)
  train = [r for r in rows if "split" not in r]
  evals = [r for r in rows if r.get("split") == "eval"]
  assert [r["step"] for r in train] == [5, 10, 15, 20, 25, 30]
  assert train[-1]["loss"] < train[0]["loss"] - 1.0  # the loss clearly drops
  assert [r["step"] for r in evals] == [15, 30] and evals[-1]["loss"] < evals[0]["loss"]
  family = json.loads((workdir / "config.json").read_text())["model"]["family"]
  assert family == {"modernbert_run": "modernbert", "llama_run": "llama"}[run]


def test_finetune_from_the_modernbert_run(modernbert_run, tmp_path, capsys):
  workdir = tmp_path / "cls"
  code = main(
    [
      "finetune",
      "--config=configs/finetune_tiny.py",
      f"--workdir={workdir}",
      f"--config.init_from={modernbert_run}",
      "--config.train.progress=false",
      "--config.data.train_examples=128",
      "--config.data.eval_examples=64",
      "--config.train.num_epochs=1",
      "--config.eval.every_steps=0",
    ]
  )
  assert code == 0, capsys.readouterr().err
  model = json.loads((workdir / "config.json").read_text())["model"]
  assert (model["family"], model["classifier_transform"], model["use_pooler"]) == ("modernbert", True, False)
  summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert summary["step"] == 4 and 0.0 <= summary["eval"]["accuracy"] <= 1.0


def test_generate_from_the_llama_run(llama_run, capsys):
  code = main(["generate", f"--workdir={llama_run}", "--prompt=the soup was", "--temperature=0", "--max_new_tokens=8"])
  assert code == 0, capsys.readouterr().err
  out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  completion = out["completions"][0]
  assert completion["prompt"] == "the soup was" and completion["new_tokens"] > 0 and completion["completion"].strip()


@pytest.mark.parametrize(
  "config,override,message",
  [
    ("llama_tiny", "model.num_key_value_heads=3", "model.num_attention_heads=4 is not divisible by"),
    ("tiny", "model.family=llama", "model.pre_layer_norm=False contradicts model.family=llama"),
    ("modernbert_tiny", "model.sliding_window=128", "model.sliding_window=128 must be in [0, "),
    ("llama_tiny", "model.family=t5", "model.family='t5'; choose auto, bert, roberta, gpt2, modernbert or llama"),
    ("llama_tiny", "model.hidden_size=124", "rotary needs an even head size"),
  ],
)
def test_bad_family_input_is_one_line_and_writes_nothing(tmp_path, capsys, config, override, message):
  workdir = tmp_path / "run"
  code = main(["pretrain", f"--config=configs/{config}.py", f"--workdir={workdir}", f"--config.{override}"])
  err = capsys.readouterr().err.strip().splitlines()
  assert code == 2
  assert len(err) == 1 and err[0].startswith("jaxpretrain: error:") and message in err[0]
  assert not workdir.exists() or not any(workdir.iterdir())


def test_translation_from_the_llama_run_starts_from_its_untied_lm_head(llama_run, tmp_path, capsys):
  """init_from restores the encoder and, for a causal LM, the untied output embedding (Llama's lm_head)."""
  workdir = tmp_path / "translate"
  code = main(
    [
      "finetune",
      "--config=configs/translate_tiny.py",
      f"--workdir={workdir}",
      f"--config.init_from={llama_run}",
      "--config.train.progress=false",
      "--config.train.steps=0",
      "--config.train.num_epochs=0",
      "--config.data.train_examples=64",
      "--config.data.eval_examples=16",
    ]
  )
  assert code == 0, capsys.readouterr().err
  pretrained = checkpoint_lib.restore_params(checkpoint_lib.item_path(str(llama_run), 30))
  start = checkpoint_lib.restore_params(checkpoint_lib.item_path(str(workdir), 0))
  np.testing.assert_array_equal(start["head"]["output_embedding"], pretrained["head"]["output_embedding"])
  np.testing.assert_array_equal(start["encoder"]["final_norm"]["scale"], pretrained["encoder"]["final_norm"]["scale"])
