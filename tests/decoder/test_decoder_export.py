"""A jaxpretrain GPT run exports as GPT2LMHeadModel: PyTorch logits and greedy generation agree."""

import json

import jax
import numpy as np
import pytest

from jaxpretrain import cli
from jaxpretrain.commands.generate import load_run
from jaxpretrain.tasks import decoding as gen

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def test_export_gpt2_logits_and_greedy_generation_match(gpt_run, tmp_path, capsys):
  workdir, _ = gpt_run
  assert cli.main(["export", f"--workdir={workdir}", f"--out={tmp_path / 'hf'}"]) == 0
  assert json.loads(capsys.readouterr().out)["architecture"] == "GPT2LMHeadModel"
  hf_model, info = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "hf", output_loading_info=True)
  assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
  hf_model.eval()
  _, model_config, params, tokenizer, _ = load_run(workdir)
  prompt = [tokenizer.special_ids["cls"], *tokenizer.encode_batch(["the soup was"])[0]]
  model = gen.lm_model(model_config)
  ours = np.asarray(jax.jit(lambda p, i: model.apply({"params": p}, {"input_ids": i}))(params, np.array([prompt])))
  with torch.no_grad():
    theirs = hf_model(torch.tensor([prompt])).logits.numpy()
  np.testing.assert_allclose(ours, theirs, atol=1e-4)
  # Our KV-cached greedy decoding against transformers' own.
  ((tokens, _),) = gen.complete(params, model_config, [prompt], eos_id=-1, pad_id=0, max_new_tokens=8)
  with torch.no_grad():
    hf_tokens = hf_model.generate(
      torch.tensor([prompt]),
      attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
      max_new_tokens=8,
      min_new_tokens=8,
      do_sample=False,
      pad_token_id=0,
    )
  assert tokens == hf_tokens[0, len(prompt) :].tolist()
