"""TFLOP/s and MFU in the training rows: the FLOP count per task, per-step token counting, the peak."""

import dataclasses
import json

import jax.numpy as jnp
import numpy as np
import pytest

from jaxpretrain.commands import bench
from jaxpretrain.models.config import ModelConfig
from jaxpretrain.train import flops, loop, peak
from jaxpretrain.train.metrics import read_metrics
from jaxpretrain.train.throughput import Throughput
from tests.run_configs import tiny_pretrain_config

CFG = ModelConfig(
  vocab_size=100, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, causal=False
)


class _Task:
  def __init__(self, name, cfg=CFG, head_positions="all", max_predictions=None):
    self.name, self.model_config, self.head_positions = name, cfg, head_positions
    self._max = max_predictions

  def max_predictions(self, seq_len):
    return self._max


def test_task_flops_count_each_head_as_bench_does():
  h, f, layers, seq = 16, 32, 2, 8
  encoder = 6 * layers * (4 * h * h + 2 * h * f) + 12 * layers * h * seq
  # Fine-tuning heads (a few hidden x labels weights) are left out: the encoder's count.
  for name in ("classification", "regression", "token_classification", "qa"):
    assert flops.task_flops_per_token(_Task(name), seq) == encoder
  # MLM's gathered head: transform + tied projection on 3 of the 8 positions.
  mlm = _Task("mlm", head_positions="masked", max_predictions=3)
  assert flops.task_flops_per_token(mlm, seq) == encoder + 6 * (100 * h + h * h) * 3 / seq
  causal = dataclasses.replace(CFG, causal=True)
  lm = encoder - 6 * layers * h * seq + 6 * 100 * h  # causal attention halved; projection on every position
  assert flops.task_flops_per_token(_Task("causal_lm", causal), seq) == lm
  assert flops.task_flops_per_token(_Task("translation", causal), seq) == lm  # the causal LM's head


def test_throughput_counts_each_batch_at_its_own_length():
  per_token = {8: 100.0, 16: 300.0}
  meter = Throughput(lambda: 0.0, per_token.__getitem__, peak_flops=1e6)
  meter.count(np.zeros((4, 8), np.int32))
  meter.count(np.zeros((4, 16), np.int32))
  meter.count(np.zeros((2, 4, 16), np.int32))  # a pmap batch: [devices, rows, length]
  rates = meter.rates()
  tokens, total = 32 + 64 + 128, 32 * 100.0 + 192 * 300.0
  elapsed = tokens / rates["tokens_per_s"]
  assert rates["tflops"] * 1e12 * elapsed == pytest.approx(total)
  assert rates["mfu"] == pytest.approx(rates["tflops"] * 1e12 / 1e6)
  meter.restart()
  assert meter.rates() == {}
  no_peak = Throughput(lambda: 0.0, per_token.__getitem__, peak_flops=0.0)
  no_peak.count(np.zeros((4, 8), np.int32))
  assert "mfu" not in no_peak.rates() and no_peak.rates()["tflops"] > 0


def test_peak_table_override_and_unknown_devices():
  assert peak.table_flops("NVIDIA H100 80GB HBM3", jnp.bfloat16) == pytest.approx(989.4e12)
  assert peak.table_flops("NVIDIA H100 80GB HBM3", jnp.float32) == pytest.approx(494.7e12)
  assert peak.table_flops("NVIDIA H100 PCIe", jnp.bfloat16) == pytest.approx(756e12)
  assert peak.table_flops("NVIDIA H200", jnp.float16) == pytest.approx(989.4e12)
  assert peak.table_flops("NVIDIA A100-SXM4-80GB", jnp.bfloat16) == pytest.approx(312e12)
  assert peak.table_flops("TPU v5 lite", jnp.float32) == pytest.approx(197e12)
  assert peak.table_flops("cpu", jnp.float32) is None
  assert peak.table_flops("Some Future Chip", jnp.bfloat16) is None
  assert peak.peak_flops(jnp.float32, 2.5) == (2.5e12, "train.peak_tflops")  # CPU: one process


def test_cpu_ceiling_is_measured_once_then_read_from_disk(tmp_path, monkeypatch):
  calls = []
  monkeypatch.setenv("JAXPRETRAIN_CACHE", str(tmp_path))
  monkeypatch.setattr(flops, "matmul_peak_flops", lambda dtype: calls.append(dtype) or 5e10)
  monkeypatch.setattr(peak, "_MEASURED", {})
  assert peak.peak_flops(jnp.float32) == (5e10, "measured")
  assert peak.peak_flops(jnp.float32) == (5e10, "measured")  # this process's copy
  monkeypatch.setattr(peak, "_MEASURED", {})  # a new process: the disk copy
  assert peak.measured_flops(jnp.float32) == 5e10
  assert len(calls) == 1
  saved = json.loads((tmp_path / "peak_flops.json").read_text())
  assert list(saved.values()) == [5e10] and list(saved)[0].startswith("cpu ") and "float32" in list(saved)[0]
  peak.measured_flops(jnp.bfloat16)  # another dtype is another measurement
  assert len(calls) == 2


def test_training_rows_have_tflops_and_mfu_from_the_bench_formula(tmp_path, tiny_prepared):
  config = tiny_pretrain_config(tiny_prepared, **{"train.steps": 4, "train.peak_tflops": 0.5})
  summary = loop.run(config, str(tmp_path / "run"))
  rows = [r for r in read_metrics(str(tmp_path / "run")) if "split" not in r]
  assert [r["step"] for r in rows] == [1, 2, 3, 4]
  cfg = ModelConfig.from_config(config.model)
  rows_scored = bench.build_task(config, cfg).max_predictions(32)  # MLM's masked head, as bench counts it
  assert 0 < rows_scored < 32
  expected = flops.training_flops_per_token(cfg, 32, task_name="mlm", head_rows=rows_scored)
  assert "tokens_per_s" not in rows[0]  # step 1 is the compilation: no rate
  for row in rows[1:]:
    assert row["tflops"] * 1e12 / row["tokens_per_s"] == pytest.approx(expected, rel=1e-9)
    assert row["mfu"] == pytest.approx(row["tflops"] / 0.5)
  assert "compile_s" in rows[0] and rows[0]["compile_s"] > 0
  assert all("compile_s" not in r for r in rows[1:])
  assert summary["compile_s"] == rows[0]["compile_s"]


def test_bench_divides_by_the_training_rows_peak_and_keeps_the_measured_one(tmp_path, monkeypatch):
  from jaxpretrain import config as config_lib

  monkeypatch.setenv("JAXPRETRAIN_CACHE", str(tmp_path))
  monkeypatch.setattr(flops, "matmul_peak_flops", lambda dtype: 5e10)  # the measured ceiling: 0.05 TFLOP/s
  monkeypatch.setattr(peak, "_MEASURED", {})
  config = config_lib.load("tiny")
  small = ["data.seq_len=16", "train.batch_size=8", "model.num_hidden_layers=1", "model.vocab_size=128"]
  config_lib.apply_overrides(config, small)
  rows = {}
  for override in (0.0, 0.5):
    config.train.peak_tflops = override
    rows[override] = bench.run(config, steps=1, rounds=1, warmup=0)
  for override, row in rows.items():
    shared, source = peak.peak_flops(jnp.dtype(row["dtype"]), override)  # what a training row divides by
    achieved = row["tokens_per_s"] * row["flops_per_token"]
    assert (row["peak_tflops"], row["peak_source"]) == (shared / 1e12, source)
    assert row["mfu"] == pytest.approx(achieved / shared, abs=1e-4)
    assert row["measured_peak_tflops"] == 0.05
    assert row["mfu_vs_measured"] == pytest.approx(achieved / 5e10, abs=1e-4)
  assert rows[0.0]["peak_source"] == "measured" and rows[0.0]["mfu"] == rows[0.0]["mfu_vs_measured"]  # CPU
  assert rows[0.5]["peak_source"] == "train.peak_tflops" and rows[0.5]["peak_tflops"] == 0.5
  assert rows[0.5]["mfu"] == pytest.approx(rows[0.5]["mfu_vs_measured"] / 10, abs=1e-4)
