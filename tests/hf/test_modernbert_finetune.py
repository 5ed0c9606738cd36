"""HF ModernBERT → `jaxpretrain finetune` (a few steps) → `jaxpretrain export` → PyTorch predicts
what the run predicts, label for label, on the run's own eval set."""

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

from tests.hf.finetune_export import (
  check_eval_set,
  export_classifier,
  finetune_from_hf,
  run_classifier,
  save_with_minilm_tokenizer,
)


@pytest.fixture(scope="module")
def tiny_modernbert(tmp_path_factory):
  """A 2-layer, 32-wide random ModernBertForMaskedLM (a 4-token window on layer 1, mean pooling for
  its classifiers) with MiniLM's WordPiece tokenizer (bert-base-uncased ids: [PAD] 0, [CLS] 101)."""
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
  save_with_minilm_tokenizer(transformers.ModernBertForMaskedLM(config), directory)
  return directory


def test_finetune_export_pytorch_predictions_match(tiny_modernbert, tmp_path, capsys):
  run, out = tmp_path / "run", tmp_path / "hf"
  summary, err = finetune_from_hf(tiny_modernbert, run, capsys)
  # As transformers does, the classifier reuses the MLM checkpoint's prediction head (`head`): only
  # the final layer starts fresh.
  assert (
    "the ModernBertForMaskedLM head serves task mlm, not classification: the classification head starts "
    "fresh except head/transform, head/transform_norm (both architectures have it)"
  ) in err
  assert "freshly initialized (not in the ModernBertForMaskedLM checkpoint): head/classifier\n" in err
  config, model, params = run_classifier(run, summary, pooling="mean")
  assert config.model.family == "modernbert" and config.task.pooling == "mean"  # the checkpoint's pooling

  hf_model = export_classifier(run, out, capsys, "ModernBertForSequenceClassification", attn_implementation="eager")
  assert hf_model.config.classifier_pooling == "mean" and hf_model.config.layer_types == [
    "full_attention",
    "sliding_attention",
  ]
  assert transformers.AutoTokenizer.from_pretrained(out).model_input_names == ["input_ids", "attention_mask"]
  assert check_eval_set(run, summary, hf_model, ("input_ids", "attention_mask"), pooling="mean")  # some rows padded
  # The text-classification pipeline reads a text as the run did and picks the run's label.
  text = "the soup was green and the service was slow"
  encoded = transformers.AutoTokenizer.from_pretrained(out)(text, return_tensors="np")
  ours = model.apply({"params": params}, {k: jnp.asarray(v) for k, v in encoded.items()})
  piped = transformers.pipeline("text-classification", model=str(out))(text)
  assert piped[0]["label"] == hf_model.config.id2label[int(np.argmax(ours))]
