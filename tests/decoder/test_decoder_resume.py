"""A causal-LM run stopped halfway and resumed equals the uninterrupted run, bit for bit."""

from tests.checkpoint import halves
from tests.decoder.helpers import tiny_gpt_config


def test_decoder_two_halves_with_resume_equal_one_run(tmp_path, gpt_prepared):
  total = 6
  config = lambda **kw: tiny_gpt_config(gpt_prepared, **{"train.steps": total, "eval.batches": 0, **kw})
  first_half = config(**{"checkpoint.every_steps": total // 2})
  halves.assert_two_halves_equal_one_run(config, tmp_path, total, first_half=first_half)
  assert len({loss for _, loss in halves.losses(tmp_path / "whole")}) == total
