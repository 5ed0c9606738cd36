"""Llama: HF → jaxpretrain → HF on tiny random models, and a pretrained run's export generating
in PyTorch exactly what `jaxpretrain generate` does.

The models (`helpers.hf_config("llama")`) have grouped-query attention (4 query heads sharing 2
key/value heads), RMSNorm, SwiGLU, RoPE with a non-default base and, as Llama's default, an
untied output projection.
"""

import numpy as np
import pytest
import torch
import transformers

from jaxpretrain import cli
from jaxpretrain import config as config_lib
from jaxpretrain.commands.generate import generate
from jaxpretrain.data.tokenizer import Tokenizer
from jaxpretrain.hf import exporter, import_config, import_params, layout
from jaxpretrain.models.config import ModelConfig
from jaxpretrain.train import loop
from tests.hf import helpers

SPECIAL = {"pad": 2, "unk": 0, "cls": 1, "sep": 2, "mask": None, "bos": 1, "eos": 2}


def torch_logits(model, batch):
  with torch.no_grad():
    return model(**{k: torch.tensor(v) for k, v in batch.items()}).logits.numpy()


def imported(directory, cfg, task="causal_lm"):
  model, template = helpers.our_model(cfg, task)
  values, notes = import_params(str(directory), cfg, task, template)
  assert sorted(values) == sorted(template), sorted(set(template) - set(values))
  return model, layout.unflatten(values), notes


@pytest.mark.parametrize("tied,scan", [(False, False), (True, False), (False, True)])
def test_round_trip(tmp_path, tied, scan):
  hf_model = helpers.hf_model("LlamaForCausalLM", "llama", tie_word_embeddings=tied)
  hf_model.save_pretrained(tmp_path / "hf")
  original = helpers.saved_tensors(tmp_path / "hf")
  assert ("lm_head.weight" in original) == (not tied)
  cfg = ModelConfig(
    **import_config.model_fields(hf_model.config.to_dict(), "llama", "causal_lm", "test"), scan_layers=scan
  )
  assert (cfg.num_key_value_heads, cfg.rope_theta, cfg.tie_word_embeddings, cfg.norm_type) == (
    2,
    500.0,
    tied,
    "rms_norm",
  )
  model, params, notes = imported(tmp_path / "hf", cfg)
  assert not notes

  batch = helpers.padded_batch("llama")
  ours = np.asarray(model.apply({"params": params}, {k: np.asarray(v, np.int32) for k, v in batch.items()}))
  theirs = torch_logits(hf_model, batch)
  real = batch["attention_mask"].astype(bool)
  assert real.sum() < real.size  # padded rows
  assert np.abs(ours - theirs)[real].max() <= 1e-4

  exported = exporter.hf_tensors(params, cfg, "llama", "causal_lm")
  assert sorted(exported) == sorted(original)
  for name, value in original.items():
    assert exported[name].dtype == value.dtype and np.array_equal(exported[name], value), name

  assert exporter.write_hf(str(tmp_path / "out"), params, cfg, "causal_lm", SPECIAL) == "LlamaForCausalLM"
  reloaded, info = transformers.AutoModelForCausalLM.from_pretrained(
    tmp_path / "out", output_loading_info=True, attn_implementation="eager"
  )
  assert type(reloaded).__name__ == "LlamaForCausalLM"
  assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
  assert reloaded.config.num_key_value_heads == 2 and reloaded.config.tie_word_embeddings == tied
  np.testing.assert_array_equal(torch_logits(reloaded.eval(), batch), theirs)


def test_bare_model_imports_its_decoder(tmp_path):
  hf_model = helpers.hf_model("LlamaModel", "llama")
  hf_model.save_pretrained(tmp_path)
  cfg = ModelConfig(**import_config.model_fields(hf_model.config.to_dict(), "llama", "causal_lm", "test"))
  _, template = helpers.our_model(cfg, "causal_lm")
  values, notes = import_params(str(tmp_path), cfg, "causal_lm", template)
  assert set(template) - set(values) == {"head/output_embedding"}  # the untied LM head starts fresh
  assert notes == ["freshly initialized (not in the LlamaModel checkpoint): head"]


def test_exported_run_generates_as_jaxpretrain_does(tmp_path, gpt_prepared):  # noqa: F811
  """A few steps of configs/llama_tiny.py (shrunk), `jaxpretrain export`, then greedy decoding of a
  left-padded batch: transformers' `generate` makes the very tokens `jaxpretrain generate` makes."""
  c = config_lib.load("configs/llama_tiny.py")
  overrides = {
    "model.hidden_size": 32,
    "model.intermediate_size": 64,
    "model.vocab_size": 512,
    "model.max_position_embeddings": 64,
    "data.seq_len": 32,
    "data.prepared_dir": gpt_prepared,
    "train.batch_size": 8,
    "train.steps": 6,
    "train.progress": False,
    "eval.every_steps": 0,
    "checkpoint.every_steps": 6,
  }
  config_lib.apply_overrides(c, list(overrides.items()))
  run, out = tmp_path / "run", tmp_path / "hf"
  loop.run(c, str(run))
  assert cli.main(["export", f"--workdir={run}", f"--out={out}"]) == 0

  prompts = ["the soup was", "a cat", "the green tea and the hot soup were on"]
  new_tokens = 10
  ours = generate(str(run), prompts, max_new_tokens=new_tokens, temperature=0.0)["completions"]

  tokenizer = transformers.AutoTokenizer.from_pretrained(out)
  tokenizer.padding_side = "left"
  hf_model = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
  assert type(hf_model).__name__ == "LlamaForCausalLM" and not hf_model.config.tie_word_embeddings
  batch = tokenizer(prompts, return_tensors="pt", padding=True)
  assert "token_type_ids" not in batch
  # The export's tokenizer reads a prompt as `jaxpretrain generate` does: [BOS] prompt.
  ours_tokenizer = Tokenizer.load(str(run / "tokenizer"))
  bos = ours_tokenizer.special_ids["cls"]
  assert [tokenizer(p)["input_ids"] for p in prompts] == [[bos, *ids] for ids in ours_tokenizer.encode_batch(prompts)]
  with torch.no_grad():
    tokens = hf_model.generate(**batch, do_sample=False, max_new_tokens=new_tokens)
  eos = hf_model.generation_config.eos_token_id
  for row, completion in enumerate(ours):
    generated = tokens[row, batch["input_ids"].shape[1] :].tolist()
    if eos in generated:
      generated = generated[: generated.index(eos) + 1]
    assert len(generated) == completion["new_tokens"] and completion["eos"] == (eos in generated)
    text = tokenizer.decode(generated, skip_special_tokens=True)
    assert text == completion["completion"], (prompts[row], text, completion)
  assert max(c["new_tokens"] for c in ours) > 2  # not a trivial EOS-first comparison
  # The text-generation pipeline runs the export as it is (its generation_config, its tokenizer).
  generator = transformers.pipeline("text-generation", model=str(out))
  piped = generator(prompts[0], do_sample=False, max_new_tokens=new_tokens, return_full_text=False)
  assert piped[0]["generated_text"].strip() == ours[0]["completion"].strip()


def test_transformers4_config_fields_read_alike():
  config = helpers.hf_config("llama").to_dict()
  legacy = {k: v for k, v in config.items() if k not in ("rope_parameters", "head_dim")}
  legacy.update(rope_theta=500.0, rope_scaling=None)
  assert import_config.model_fields(legacy, "llama", "causal_lm", "t") == import_config.model_fields(
    config, "llama", "causal_lm", "t"
  )


def test_bfloat16_checkpoint_imports(tmp_path):
  """Most Llama checkpoints are stored in bfloat16: read as such, then widened where a run needs float32."""
  hf_model = helpers.hf_model("LlamaForCausalLM", "llama").to(torch.bfloat16)
  hf_model.save_pretrained(tmp_path)
  cfg = ModelConfig(**import_config.model_fields(hf_model.config.to_dict(), "llama", "causal_lm", "test"))
  _, template = helpers.our_model(cfg, "causal_lm")
  values, _ = import_params(str(tmp_path), cfg, "causal_lm", template)
  assert sorted(values) == sorted(template)
  kernel = values["encoder/layer_1/mlp/gate/kernel"]
  assert kernel.dtype.name == "bfloat16"
  reference = hf_model.model.layers[1].mlp.gate_proj.weight.detach().float().numpy().T
  np.testing.assert_array_equal(kernel.astype(np.float32), reference)
