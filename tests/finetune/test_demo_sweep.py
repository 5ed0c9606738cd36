"""The demo's fine-tuning sweep does the shared work once (one compilation, one checkpoint read), with the
same result as a fresh warm start; the demo's timing table covers every phase and adds up."""

import jax
import numpy as np
import pytest

from jaxpretrain import checkpoint as checkpoint_lib
from jaxpretrain import config as config_lib
from jaxpretrain import demo
from jaxpretrain.data.finetune.features import encode_classification
from jaxpretrain.data.readers import embedded
from jaxpretrain.data.tokenizer import Tokenizer
from jaxpretrain.demo.sweep import Sweep
from jaxpretrain.train import warm_start
from tests.finetune.helpers import MODEL


def _sweep(pretrained):
  """A 2-step sweep on the session's tiny pretraining run, with its model dims and tokenizer."""
  config = config_lib.load("demo")
  config_lib.apply_overrides(
    config,
    [*MODEL.items(), ("demo.steps", 2), ("demo.batch_size", 8), ("demo.seq_len", 32), ("demo.test_examples", 24)],
  )
  tokenizer_dir = f"{pretrained}/tokenizer"
  tokenizer = Tokenizer.load(tokenizer_dir)

  def encode(examples):
    rows = [{"text_a": e["text"], "text_b": None, "label": e["label"], "where": "embedded"} for e in examples]
    return encode_classification(rows, tokenizer, 32, embedded.LABEL_NAMES)

  ft = demo.finetune_config(config, tokenizer_dir)
  sweep = Sweep(ft, num_labels=2, steps=2, eval_arrays=encode(embedded.labeled_examples("test", 24, 0)))
  return sweep, ft, encode


def test_runs_compile_each_step_once_and_read_the_checkpoint_once(pretrained, monkeypatch):
  sweep, _, encode = _sweep(pretrained)
  reads = []
  original = warm_start.read_encoder
  monkeypatch.setattr(warm_start, "read_encoder", lambda *a: reads.append(1) or original(*a))
  # Samples of different sizes and lengths: still one shape, one program per step function.
  for seed, size in [(0, 8), (1, 16), (2, 24)]:
    arrays = encode(embedded.labeled_examples("train", size, seed))
    for init_from in (pretrained, ""):
      result = sweep.run(arrays, seed=seed, init_from=init_from)
      assert 0.0 <= result["accuracy"] <= 1.0 and np.isfinite(result["final_train_loss"])
  assert sweep.compilations() == {"train_step": 1, "eval_step": 1}
  assert len(reads) == 1
  # The test set in batches of demo.batch_size rows of demo.seq_len tokens, placed on the devices once.
  assert [b["input_ids"].shape for b in sweep.eval_batches] == [(8, 32)] * 3


@pytest.mark.parametrize("seed", [0, 3])
def test_the_kept_encoder_equals_a_fresh_warm_start(pretrained, seed):
  sweep, ft, _ = _sweep(pretrained)
  sweep.warm_start(sweep.init_state(1), pretrained)  # reads the checkpoint and keeps it
  kept = jax.device_get(sweep.warm_start(sweep.init_state(seed), pretrained).params)
  ft.init_from = pretrained
  fresh = jax.device_get(warm_start.apply(ft, sweep.init_state(seed), sweep.strategy).params)
  kept_leaves, fresh_leaves = checkpoint_lib.flat_leaves(kept), checkpoint_lib.flat_leaves(fresh)
  assert set(kept_leaves) == set(fresh_leaves)
  for path, leaf in fresh_leaves.items():
    np.testing.assert_array_equal(kept_leaves[path], leaf, err_msg=path)


def test_the_timing_table_lists_every_phase_and_adds_up():
  progress = demo.Progress()
  for phase in demo.PHASES:
    progress.lap(phase)
  assert list(progress.phases) == list(demo.PHASES)
  assert sum(progress.phases.values()) == pytest.approx(progress.elapsed(), abs=0.05)
  seconds = {"prepare": 4.0, "pretrain": 120.0, "finetune": 60.0, "vsm": 12.0, "report": 4.0, "total": 200.0}
  lines = demo.timing_table(seconds, {"finetune": "40 runs"})
  rows = {line.split("|")[1].strip(): line for line in lines[2:]}
  assert list(rows) == [*demo.PHASES, "total"]
  assert "| 120.0 | 60% |" in rows["pretrain"] and "40 runs" in rows["finetune"]
  assert rows["total"] == "| total | 200.0 | 100% | 3 min 20 s |"
