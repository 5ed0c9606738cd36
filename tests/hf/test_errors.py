"""Bad HF input: one line on stderr naming the cause, exit status 2, before any training."""

import json

import pytest
import torch

from jaxpretrain import cli
from jaxpretrain.errors import UserError
from jaxpretrain.hf import families, import_config
from tests.hf import helpers


def finetune(capsys, tmp_path, directory, *flags):
  capsys.readouterr()
  code = cli.main(
    [
      "finetune",
      "--config=configs/finetune_from_hf.py",
      f"--workdir={tmp_path / 'run'}",
      f"--config.init_from=hf:{directory}",
      *flags,
    ]
  )
  err = capsys.readouterr().err.strip().splitlines()
  assert code == 2 and len(err) == 1, err
  assert not (tmp_path / "run").exists()  # nothing written
  return err[0]


def checkpoint(tmp_path, arch="BertForSequenceClassification", family="bert"):
  directory = tmp_path / "hf"
  helpers.write_checkpoint(directory, arch, family)
  return directory


def edit_config(directory, **changes):
  path = directory / "config.json"
  config = json.loads(path.read_text())
  config.update(changes)
  path.write_text(json.dumps(config))


def test_unknown_model_type(capsys, tmp_path):
  directory = checkpoint(tmp_path)
  edit_config(directory, model_type="t5")
  assert "unsupported model_type 't5'" in finetune(capsys, tmp_path, directory)


def test_unknown_architecture(capsys, tmp_path):
  directory = checkpoint(tmp_path)
  edit_config(directory, architectures=["BertForNextSentencePrediction"])
  assert "unsupported architecture 'BertForNextSentencePrediction'" in finetune(capsys, tmp_path, directory)


def test_vocabulary_larger_than_the_model(capsys, tmp_path):
  directory = checkpoint(tmp_path)
  helpers.write_tokenizer(directory, "bert", size=helpers.VOCAB + 5)
  line = finetune(capsys, tmp_path, directory)
  assert f"has {helpers.VOCAB + 5} tokens but config.json says vocab_size={helpers.VOCAB}" in line


def test_missing_safetensors(capsys, tmp_path):
  directory = checkpoint(tmp_path)
  (directory / "model.safetensors").unlink()
  assert "has no model.safetensors" in finetune(capsys, tmp_path, directory)


def test_pickle_only_needs_allow_pickle(capsys, tmp_path):
  directory = checkpoint(tmp_path)
  (directory / "model.safetensors").unlink()
  torch.save(
    {"bert.embeddings.word_embeddings.weight": torch.zeros(helpers.VOCAB, 32)}, directory / "pytorch_model.bin"
  )
  line = finetune(capsys, tmp_path, directory)
  assert "only pickled pytorch_model.bin" in line and "--allow_pickle" in line


def test_missing_directory(capsys, tmp_path):
  assert "no such directory" in finetune(capsys, tmp_path, tmp_path / "nowhere")


def test_relative_positions_refused(capsys, tmp_path):
  directory = checkpoint(tmp_path)
  edit_config(directory, position_embedding_type="relative_key")
  assert "position_embedding_type='relative_key' is not supported" in finetune(capsys, tmp_path, directory)


def test_export_errors(capsys, tmp_path):
  assert cli.main(["export", f"--workdir={tmp_path}", f"--out={tmp_path / 'out'}"]) == 2
  assert "no run in" in capsys.readouterr().err
  with pytest.raises(UserError, match="gpt2 exports tasks causal_lm"):
    families.architecture_for("gpt2", "classification")
  with pytest.raises(UserError, match="has no HF architecture"):
    families.architecture_for("bert", "causal_lm")


def test_checkpoint_without_encoder_tensors(tmp_path):
  from safetensors.numpy import load_file, save_file

  from jaxpretrain.hf import import_params
  from jaxpretrain.models.config import ModelConfig

  directory = checkpoint(tmp_path)
  tensors = load_file(directory / "model.safetensors")
  save_file(
    {f"0.auto_model.{k}": v for k, v in tensors.items()}, directory / "model.safetensors", metadata={"format": "pt"}
  )  # a layout we do not know: nothing maps
  cfg = ModelConfig(
    **import_config.model_fields(json.loads((directory / "config.json").read_text()), "bert", "classification", "test")
  )
  _, template = helpers.our_model(cfg, "classification")
  with pytest.raises(UserError, match="checkpoint has no tensor bert.embeddings.word_embeddings.weight"):
    import_params(str(directory), cfg, "classification", template)


# config.json fields of ModernBERT and Llama checkpoints that jaxpretrain cannot compute: each one
# line naming the field. (family, architecture, changes to config.json, what the line says)
UNSUPPORTED = [
  (
    "modernbert",
    "ModernBertForMaskedLM",
    {
      "rope_parameters": {
        "full_attention": {"rope_type": "linear", "factor": 2.0, "rope_theta": 1000.0},
        "sliding_attention": {"rope_type": "default", "rope_theta": 100.0},
      }
    },
    "rope_parameters.full_attention.rope_type='linear' is not supported",
  ),
  ("modernbert", "ModernBertForMaskedLM", {"attention_bias": True}, "config attention_bias=True is not supported"),
  ("modernbert", "ModernBertForMaskedLM", {"mlp_bias": True}, "config mlp_bias=True is not supported"),
  ("modernbert", "ModernBertForMaskedLM", {"norm_bias": True}, "config norm_bias=True is not supported"),
  ("modernbert", "ModernBertForMaskedLM", {"decoder_bias": False}, "config decoder_bias=False is not supported"),
  ("modernbert", "ModernBertForMaskedLM", {"classifier_pooling": "max"}, "classifier_pooling='max' is not supported"),
  (
    "modernbert",
    "ModernBertForMaskedLM",
    {"classifier_activation": "relu"},
    "classifier_activation='relu' is not supported (jaxpretrain maps 'gelu')",
  ),
  (
    "modernbert",
    "ModernBertForMaskedLM",
    {"layer_types": ["sliding_attention", "full_attention", "full_attention"]},
    "layer_types=['sliding_attention', 'full_attention', 'full_attention'] is not supported",
  ),
  (
    "llama",
    "LlamaForCausalLM",
    {"rope_parameters": {"rope_type": "llama3", "factor": 8.0, "rope_theta": 500.0}},
    "rope_parameters.rope_type='llama3' is not supported",
  ),
  (
    "llama",
    "LlamaForCausalLM",
    {"rope_parameters": None, "rope_scaling": {"type": "dynamic", "factor": 2.0}},
    "rope_scaling.rope_type='dynamic' is not supported",
  ),
  ("llama", "LlamaForCausalLM", {"head_dim": 16}, "head_dim=16 is not supported"),
  ("llama", "LlamaForCausalLM", {"attention_bias": True}, "llama config attention_bias=True is not supported"),
  ("llama", "LlamaForCausalLM", {"mlp_bias": True}, "llama config mlp_bias=True is not supported"),
  ("llama", "LlamaForCausalLM", {"hidden_act": "gelu_fast"}, "hidden_act 'gelu_fast' is not supported"),
  (
    "llama",
    "LlamaForSequenceClassification",
    {},
    "unsupported architecture 'LlamaForSequenceClassification' for model_type 'llama'",
  ),
]


@pytest.mark.parametrize("family,arch,changes,message", UNSUPPORTED, ids=[c[3][:40] for c in UNSUPPORTED])
def test_unsupported_modernbert_and_llama_variants(capsys, tmp_path, family, arch, changes, message):
  directory = tmp_path / "hf"
  helpers.write_checkpoint(directory, "ModernBertForMaskedLM" if family == "modernbert" else "LlamaForCausalLM", family)
  edit_config(directory, architectures=[arch], **changes)
  assert message in finetune(capsys, tmp_path, directory)
