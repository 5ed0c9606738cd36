"""HF BERT → `jaxpretrain finetune` (a few steps) → `jaxpretrain export` → PyTorch agrees with us."""

import pytest
import torch
import transformers

from tests.hf.finetune_export import check_eval_set, export_classifier, finetune_from_hf, save_with_minilm_tokenizer


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
  """A 1-layer, 32-wide random BertForMaskedLM with MiniLM's (bert-base-uncased) tokenizer."""
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
  save_with_minilm_tokenizer(transformers.BertForMaskedLM(config), directory)
  return directory


def test_finetune_export_pytorch_predictions_match(tiny_bert, tmp_path, capsys):
  run, out = tmp_path / "run", tmp_path / "hf"
  summary, err = finetune_from_hf(tiny_bert, run, capsys)
  # The MLM checkpoint has no classifier (nor pooler): the run says it starts them fresh.
  assert "freshly initialized" in err and "head/classifier" in err
  hf_model = export_classifier(run, out, capsys, "BertForSequenceClassification")
  # Our logits on the run's own eval set, from the exported checkpoint step's parameters.
  check_eval_set(run, summary, hf_model, ("input_ids", "attention_mask", "token_type_ids"))
