"""A causal-LM run stopped halfway and resumed equals the uninterrupted run, bit for bit."""

import jax
import numpy as np

from jaxpretrain.train import loop
from tests.checkpoint.test_resume import _final_params, _losses, _run_until
from tests.decoder.helpers import tiny_gpt_config


def test_decoder_two_halves_with_resume_equal_one_run(tmp_path, gpt_prepared):
  total = 6
  config = lambda **kw: tiny_gpt_config(gpt_prepared, **{"train.steps": total, "eval.batches": 0, **kw})
  loop.run(config(), str(tmp_path / "whole"))
  _run_until(config(**{"checkpoint.every_steps": total // 2}), str(tmp_path / "split"), total // 2)
  loop.run(config(), str(tmp_path / "split"))
  assert _losses(tmp_path / "split") == _losses(tmp_path / "whole")
  assert len({loss for _, loss in _losses(tmp_path / "whole")}) == total
  step_a, a = _final_params(str(tmp_path / "whole"))
  step_b, b = _final_params(str(tmp_path / "split"))
  assert step_a == step_b == total
  jax.tree.map(np.testing.assert_array_equal, a, b)
