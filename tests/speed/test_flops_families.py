"""The FLOP count of grouped-query attention, gated MLPs and sliding windows, against a hand count."""

import dataclasses

import pytest

from jaxpretrain import config as config_lib
from jaxpretrain.models.config import ModelConfig
from jaxpretrain.train import flops


def _model(name: str) -> ModelConfig:
  return ModelConfig.from_config(config_lib.load(name).model)


def test_llama_125m_flops_match_a_hand_count():
  cfg = _model("llama_125m")  # 12 layers, d 768, 12 heads of 64, 4 KV heads, SwiGLU 2048, vocab 32000
  seq = 1024
  q_o = 2 * 768 * 768
  k_v = 2 * 768 * (4 * 64)  # four key/value heads: a third of Q's width
  mlp = 3 * 768 * 2048  # gate, up, down
  head = 32000 * 768  # the untied LM head: as many FLOPs as a tied one
  attention = 12 * 768 * 12 * (seq / 2)  # causal: half the scores
  expected = 6 * (12 * (q_o + k_v + mlp) + head) + attention
  assert flops.training_flops_per_token(cfg, seq, task_name="causal_lm", head_rows=seq) == expected


def test_modernbert_base_flops_count_windows_on_local_layers():
  cfg = _model("modernbert_base")  # 22 layers; 0, 3, ..., 21 global (8), 14 local with a ±64 window
  seq = 1024
  layers = 22 * (4 * 768 * 768 + 3 * 768 * 1152)
  mlm_head = 768 * 768 + 50368 * 768
  rows = 100
  attention = 12 * 768 * (8 * seq + 14 * (2 * 64 + 1))
  expected = 6 * (layers + mlm_head * rows / seq) + attention
  got = flops.training_flops_per_token(cfg, seq, task_name="mlm", head_rows=rows)
  assert got == pytest.approx(expected, rel=1e-12)
  assert [cfg.is_global(i) for i in range(7)] == [True, False, False, True, False, False, True]


def test_a_window_wider_than_the_sequence_costs_what_global_attention_does():
  cfg = _model("modernbert_tiny")  # window 32 each side
  everywhere = dataclasses.replace(cfg, sliding_window=0)
  assert flops.training_flops_per_token(cfg, 32, task_name="mlm", head_rows=32) == flops.training_flops_per_token(
    everywhere, 32, task_name="mlm", head_rows=32
  )
  assert flops.training_flops_per_token(cfg, 128, task_name="mlm", head_rows=32) < flops.training_flops_per_token(
    everywhere, 128, task_name="mlm", head_rows=32
  )
