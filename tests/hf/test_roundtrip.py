"""HF → jaxpretrain → HF on tiny random BERT, RoBERTa and GPT-2 models of every exported architecture.

Import must reproduce the PyTorch logits (within 1e-4, float32); export must give back the very
same tensors (bit-identical) that transformers loads with no missing or unexpected keys.
"""

import numpy as np
import pytest
import transformers

from jaxpretrain.hf import exporter, import_config, import_params, layout
from jaxpretrain.models.config import ModelConfig
from tests.hf import helpers

CASES = [
  ("bert", "BertForMaskedLM", "mlm", "AutoModelForMaskedLM"),
  ("bert", "BertForSequenceClassification", "classification", "AutoModelForSequenceClassification"),
  ("bert", "BertForTokenClassification", "token_classification", "AutoModelForTokenClassification"),
  ("bert", "BertForQuestionAnswering", "qa", "AutoModelForQuestionAnswering"),
  ("roberta", "RobertaForMaskedLM", "mlm", "AutoModelForMaskedLM"),
  ("roberta", "RobertaForSequenceClassification", "classification", "AutoModelForSequenceClassification"),
  ("roberta", "RobertaForTokenClassification", "token_classification", "AutoModelForTokenClassification"),
  ("gpt2", "GPT2LMHeadModel", "causal_lm", "AutoModelForCausalLM"),
  ("gpt2", "GPT2ForQuestionAnswering", "qa", "AutoModelForQuestionAnswering"),
]
# As `Tokenizer.special_ids` gives them for `helpers.write_tokenizer`'s tokenizers.
SPECIAL = {
  "bert": {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4, "bos": None, "eos": None},
  "roberta": {"pad": 1, "unk": 3, "cls": 0, "sep": 2, "mask": 4, "bos": 0, "eos": 2},
  "gpt2": dict.fromkeys(("pad", "unk", "cls", "sep", "bos", "eos"), helpers.VOCAB - 1) | {"mask": None},
}


@pytest.mark.parametrize("family,arch,task,auto", CASES, ids=[c[1] for c in CASES])
def test_round_trip(tmp_path, family, arch, task, auto):
  hf_model = helpers.hf_model(arch, family)
  hf_model.save_pretrained(tmp_path / "hf")
  original = helpers.saved_tensors(tmp_path / "hf")
  cfg = ModelConfig(**import_config.model_fields(hf_model.config.to_dict(), family, task, arch))
  model, template = helpers.our_model(cfg, task)

  values, notes = import_params(str(tmp_path / "hf"), cfg, task, template)
  # Only the sequence classifiers have a pooler (RoBERTa: classifier.dense); elsewhere ours starts fresh.
  expected_fresh = set() if task == "classification" else {p for p in template if p.startswith("encoder/pooler/")}
  assert set(template) - set(values) == expected_fresh
  params = layout.unflatten({p: values.get(p, np.zeros(template[p].shape, np.float32)) for p in template})

  batch = helpers.padded_batch(family)
  ours, theirs = helpers.jax_outputs(model, params, batch), helpers.torch_outputs(hf_model, batch)
  # Padding positions too (RoBERTa numbers them padding_idx), except where our QA head masks them.
  diff = np.abs(ours - theirs)
  if task == "qa":
    diff = diff[:, batch["attention_mask"].astype(bool)]
  assert diff.max() <= 1e-4, diff.max()

  exported = exporter.hf_tensors(params, cfg, family, task)
  assert sorted(exported) == sorted(original)
  for name, value in original.items():
    assert exported[name].dtype == value.dtype and np.array_equal(exported[name], value), name

  written = exporter.write_hf(str(tmp_path / "out"), params, cfg, task, SPECIAL[family])
  assert written == arch
  # Only a causal LM gets a generation config: its own bos/eos/pad, and new tokens that fit its positions.
  generation = tmp_path / "out" / "generation_config.json"
  assert generation.exists() == (task == "causal_lm")
  if generation.exists():
    saved = transformers.GenerationConfig.from_pretrained(tmp_path / "out")
    assert (saved.bos_token_id, saved.eos_token_id, saved.pad_token_id) == (helpers.VOCAB - 1,) * 3
    assert saved.max_new_tokens == hf_model.config.n_positions // 4
  reloaded, info = getattr(transformers, auto).from_pretrained(tmp_path / "out", output_loading_info=True)
  assert type(reloaded).__name__ == arch
  assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
  np.testing.assert_array_equal(helpers.torch_outputs(reloaded.eval(), batch), theirs)
