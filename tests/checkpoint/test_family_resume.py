"""A ModernBERT MLM run and a Llama causal-LM run (scanned layers) stopped halfway and resumed
equal the uninterrupted runs, bit for bit."""

import pytest

from jaxpretrain import config as config_lib
from tests.checkpoint import halves


def _shrink(name: str, prepared_dir: str, **overrides):
  """configs/NAME.py at 32 wide (its family's switches kept) on a prepared corpus of 32-token rows."""
  c = config_lib.load(name)
  c.model.hidden_size, c.model.num_attention_heads, c.model.intermediate_size = 32, 4, 48
  c.model.vocab_size, c.model.max_position_embeddings = 512, 32
  c.data.seq_len, c.data.prepared_dir, c.data.prefetch = 32, prepared_dir, 1
  c.train.batch_size, c.train.log_every, c.train.progress, c.train.warmup_steps = 8, 1, False, 2
  c.eval.every_steps, c.eval.batches, c.checkpoint.every_steps = 0, 0, 3
  config_lib.apply_overrides(c, list(overrides.items()))
  return c


@pytest.mark.parametrize(
  "name,overrides",
  [
    ("modernbert_tiny", {"model.sliding_window": 4}),  # windows narrower than the rows: local layers matter
    ("llama_tiny", {"model.scan_layers": True, "model.num_key_value_heads": 2}),
  ],
)
def test_two_halves_with_resume_equal_one_run(tmp_path, tiny_prepared, gpt_prepared, name, overrides):
  prepared = gpt_prepared if name.startswith("llama") else tiny_prepared
  total = 6

  def config(**kw):
    return _shrink(name, prepared, **{"train.steps": total, **overrides, **kw})

  halves.assert_two_halves_equal_one_run(config, tmp_path, total)
  assert len({loss for _, loss in halves.losses(tmp_path / "whole")}) == total
