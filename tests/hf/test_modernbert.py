"""ModernBERT: HF → jaxpretrain → HF on tiny random models of every exported architecture.

The models (`helpers.hf_config("modernbert")`) have a global layer, a sliding-window layer whose
window (2 tokens each side) is shorter than the padded rows, two RoPE bases, GeGLU MLPs and
bias-free norms; layer 0 has HF's Identity attention norm. Import must reproduce PyTorch's
logits (float32, within 1e-4), export must give back the very tensors `save_pretrained` wrote.
"""

import numpy as np
import pytest
import torch
import transformers

from jaxpretrain.hf import exporter, import_config, import_params, layout
from jaxpretrain.models.config import ModelConfig
from tests.hf import helpers

CASES = [
  ("ModernBertForMaskedLM", "mlm", "cls", "AutoModelForMaskedLM"),
  ("ModernBertForSequenceClassification", "classification", "cls", "AutoModelForSequenceClassification"),
  ("ModernBertForSequenceClassification", "classification", "mean", "AutoModelForSequenceClassification"),
  ("ModernBertForTokenClassification", "token_classification", "cls", "AutoModelForTokenClassification"),
  ("ModernBertForQuestionAnswering", "qa", "cls", "AutoModelForQuestionAnswering"),
]
SPECIAL = {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4, "bos": None, "eos": None}


def imported(directory, cfg, task, pooling="cls"):
  """(our Model, its parameters imported from `directory`, the import's notes)."""
  model, template = helpers.our_model(cfg, task, pooling)
  values, notes = import_params(str(directory), cfg, task, template)
  assert sorted(values) == sorted(template), sorted(set(template) - set(values))
  return model, layout.unflatten(values), notes


def fields(hf_model, task):
  return import_config.model_fields(hf_model.config.to_dict(), "modernbert", task, "test")


@pytest.mark.parametrize("arch,task,pooling,auto", CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_round_trip(tmp_path, arch, task, pooling, auto):
  hf_model = helpers.hf_model(arch, "modernbert", classifier_pooling=pooling)
  hf_model.save_pretrained(tmp_path / "hf")
  original = helpers.saved_tensors(tmp_path / "hf")
  assert "model.layers.0.attn_norm.weight" not in original  # HF's Identity: nothing to map
  cfg = ModelConfig(**fields(hf_model, task))
  assert (cfg.sliding_window, cfg.global_attn_every_n_layers, cfg.rope_theta, cfg.local_rope_theta) == (
    2,
    2,
    1000.0,
    100.0,
  )
  model, params, notes = imported(tmp_path / "hf", cfg, task, pooling)
  assert not notes

  batch = helpers.padded_batch("modernbert")
  ours, theirs = helpers.jax_outputs(model, params, batch), helpers.torch_outputs(hf_model, batch)
  diff = np.abs(ours - theirs)
  if task == "qa":  # our QA head masks padding
    diff = diff[:, batch["attention_mask"].astype(bool)]
  assert diff.max() <= 1e-4, diff.max()

  exported = exporter.hf_tensors(params, cfg, "modernbert", task)
  assert sorted(exported) == sorted(original)
  for name, value in original.items():
    assert exported[name].dtype == value.dtype and np.array_equal(exported[name], value), name

  assert exporter.write_hf(str(tmp_path / "out"), params, cfg, task, SPECIAL, pooling=pooling) == arch
  reloaded, info = getattr(transformers, auto).from_pretrained(
    tmp_path / "out", output_loading_info=True, attn_implementation="eager"
  )
  assert type(reloaded).__name__ == arch
  assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
  assert reloaded.config.classifier_pooling == pooling and reloaded.config.layer_types == hf_model.config.layer_types
  assert (reloaded.config.bos_token_id, reloaded.config.eos_token_id, reloaded.config.pad_token_id) == (2, 3, 0)
  np.testing.assert_array_equal(helpers.torch_outputs(reloaded.eval(), batch), theirs)


def test_scanned_layers_and_untied_decoder(tmp_path):
  """Scanned layers stack an attention norm for layer 0 too (unused): import fills it, export drops it."""
  hf_model = helpers.hf_model("ModernBertForMaskedLM", "modernbert", tie_word_embeddings=False)
  hf_model.save_pretrained(tmp_path)
  original = helpers.saved_tensors(tmp_path)
  assert "decoder.weight" in original
  cfg = ModelConfig(**fields(hf_model, "mlm"), scan_layers=True)
  assert not cfg.tie_word_embeddings
  model, params, _ = imported(tmp_path, cfg, "mlm")
  assert params["encoder"]["layers"]["block"]["attention_norm"]["scale"].shape == (3, 32)
  batch = helpers.padded_batch("modernbert")
  np.testing.assert_allclose(
    helpers.jax_outputs(model, params, batch), helpers.torch_outputs(hf_model, batch), atol=1e-4
  )
  exported = exporter.hf_tensors(params, cfg, "modernbert", "mlm")
  assert sorted(exported) == sorted(original)
  assert all(np.array_equal(exported[k], original[k]) for k in original)


def test_bare_model_imports_its_encoder(tmp_path):
  hf_model = helpers.hf_model("ModernBertModel", "modernbert")
  hf_model.save_pretrained(tmp_path)
  cfg = ModelConfig(**fields(hf_model, "classification"))
  model, template = helpers.our_model(cfg, "classification")
  values, notes = import_params(str(tmp_path), cfg, "classification", template)
  assert sorted(set(template) - set(values)) == sorted(p for p in template if p.startswith("head/"))
  assert notes == [
    "freshly initialized (not in the ModernBertModel checkpoint): head/classifier, head/transform, head/transform_norm"
  ]
  from jaxpretrain.models.encoder import Encoder

  params = layout.unflatten({p[len("encoder/") :]: v for p, v in values.items() if p.startswith("encoder/")})
  batch = helpers.padded_batch("modernbert")
  out = Encoder(cfg).apply(
    {"params": params},
    np.asarray(batch["input_ids"], np.int32),
    attention_mask=np.asarray(batch["attention_mask"], np.int32),
  )
  with torch.no_grad():
    ref = hf_model(**{k: torch.tensor(v) for k, v in batch.items()}).last_hidden_state.numpy()
  np.testing.assert_allclose(np.asarray(out.hidden), ref, atol=1e-4)


def test_mlm_checkpoint_lends_classifiers_its_prediction_head(tmp_path):
  """transformers loads an MLM checkpoint's `head` (dense, norm) into every ModernBERT task model: so do we."""
  helpers.hf_model("ModernBertForMaskedLM", "modernbert").save_pretrained(tmp_path)
  reference = transformers.ModernBertForTokenClassification.from_pretrained(tmp_path, num_labels=helpers.NUM_LABELS)
  cfg = ModelConfig(**fields(reference, "token_classification"))
  _, template = helpers.our_model(cfg, "token_classification")
  values, notes = import_params(str(tmp_path), cfg, "token_classification", template)
  assert set(template) - set(values) == {"head/classifier/kernel", "head/classifier/bias"}
  np.testing.assert_array_equal(values["head/transform/kernel"], reference.head.dense.weight.detach().numpy().T)
  np.testing.assert_array_equal(values["head/transform_norm/scale"], reference.head.norm.weight.detach().numpy())
  assert notes[0].endswith("head starts fresh except head/transform, head/transform_norm (both architectures have it)")
  assert notes[1] == "freshly initialized (not in the ModernBertForMaskedLM checkpoint): head/classifier"
  assert notes[2] == "unused from the checkpoint: decoder"  # the MLM output bias


def test_transformers4_config_fields_read_alike():
  """Before `layer_types` and `rope_parameters`, config.json said the same with other keys."""
  config = helpers.hf_config("modernbert").to_dict()
  legacy = {k: v for k, v in config.items() if k not in ("layer_types", "rope_parameters")}
  legacy.update(global_rope_theta=1000.0, local_rope_theta=100.0, global_attn_every_n_layers=2)
  assert import_config.model_fields(legacy, "modernbert", "mlm", "t") == import_config.model_fields(
    config, "modernbert", "mlm", "t"
  )
  every_layer_global = dict(legacy, global_attn_every_n_layers=1)
  fields = import_config.model_fields(every_layer_global, "modernbert", "mlm", "t")
  assert (fields["sliding_window"], fields["global_attn_every_n_layers"]) == (0, 1)


def test_apply_hf_config_takes_the_classifier_pooling(tmp_path):
  from jaxpretrain import config as config_lib
  from jaxpretrain.hf.importer import apply_hf_config

  helpers.write_checkpoint(tmp_path, "ModernBertForMaskedLM", "modernbert", classifier_pooling="mean")

  def applied(*overrides, recipe="configs/finetune_from_hf.py"):
    c = config_lib.load(recipe)
    config_lib.apply_overrides(c, [f"init_from=hf:{tmp_path}", *overrides])
    apply_hf_config(c)
    return c

  c = applied()
  assert c.task.pooling == "mean" and c.model.family == "modernbert"
  assert (c.model.sliding_window, c.model.global_attn_every_n_layers, c.model.pre_ln_embedding_norm) == (2, 2, True)
  assert (c.model.use_pooler, c.model.type_vocab_size, c.model.position_embedding_type) == (False, 0, "rotary")
  assert applied("task.pooling=cls").task.pooling == "cls"  # the user's explicit choice stays
  # A recipe written for another family: every switch follows the checkpoint.
  c = applied(recipe="configs/llama_tiny.py")
  assert (c.model.family, c.model.norm_type, c.model.causal, c.model.num_key_value_heads) == (
    "modernbert",
    "layer_norm",
    False,
    0,
  )
  assert c.model.tie_word_embeddings and c.model.hidden_size == 32
