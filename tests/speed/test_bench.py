"""`jaxpretrain bench`: one JSON line with every documented key, numbers consistent with the
documented FLOP formula, the HF PyTorch comparison, and one-line errors."""

import importlib.util
import json
import os
import subprocess
import sys
import types

import pytest

from jaxpretrain import cli
from jaxpretrain.models import presets
from jaxpretrain.models.config import ModelConfig
from jaxpretrain.train import flops

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KEYS = (
  "layers",
  "hidden",
  "heads",
  "mlp",
  "vocab",
  "seq",
  "batch",
  "step_ms",
  "tokens_per_s",
  "tflops",
  "mfu",
  "compile_s",
  "peak_memory_bytes",
)
SMALL = [
  "--config=configs/tiny.py",
  "--config.data.seq_len=32",
  "--config.train.batch_size=8",
  "--config.model.num_hidden_layers=1",
  "--config.model.vocab_size=512",
]


def _bench(capsys, *args):
  code = cli.main(["bench", *SMALL, "--steps=2", "--rounds=2", "--warmup=0", *args])
  out, err = capsys.readouterr()
  return code, out.strip().splitlines(), err


def test_bench_prints_one_json_line_with_every_key_and_the_torch_comparison(capsys):
  code, lines, _ = _bench(capsys, "--compare=hf-torch")
  assert code == 0 and len(lines) == 1
  row = json.loads(lines[0])
  assert set(KEYS) <= set(row)
  assert (row["layers"], row["hidden"], row["heads"], row["mlp"], row["vocab"], row["seq"], row["batch"]) == (
    1,
    128,
    2,
    512,
    512,
    32,
    8,
  )
  assert row["tokens_per_s"] == pytest.approx(8 * 32 / (row["step_ms"] / 1e3), rel=1e-3)
  cfg = ModelConfig(**{**presets.PRESETS["tiny"], "num_hidden_layers": 1, "vocab_size": 512})
  expected = flops.training_flops_per_token(cfg, 32, task_name="mlm", head_rows=row["head_rows"])
  assert row["flops_per_token"] == round(expected)
  assert row["tflops"] == pytest.approx(row["tokens_per_s"] * expected / 1e12, rel=1e-2)
  assert row["mfu"] == pytest.approx(row["tflops"] / row["peak_tflops"], rel=2e-2)
  assert row["compile_s"] > 0 and row["peak_memory_bytes"] > 0 and row["steps"] == 2
  assert row["hf_torch_tokens_per_s"] > 0
  assert row["speedup_vs_hf_torch"] == pytest.approx(row["tokens_per_s"] / row["hf_torch_tokens_per_s"], rel=1e-2)
  assert "avg_power_w" not in row  # no NVIDIA GPU here: power is skipped silently


def test_flop_formula_reproduces_the_anchor_figure():
  # /work/shared/anchors: HF BertForMaskedLM, bert-base seq 128, head over every position,
  # 361,991 tokens/s reported as 241.8 TFLOP/s.
  cfg = ModelConfig(**presets.PRESETS["base"])
  per_token = flops.training_flops_per_token(cfg, 128, task_name="mlm", head_rows=128)
  assert round(361_991 * per_token / 1e12, 1) == 241.8
  causal = ModelConfig(**presets.PRESETS["gpt2-small"])
  full, half = (
    flops.training_flops_per_token(c, 1024, task_name="causal_lm", head_rows=1024)
    for c in (ModelConfig(**{**presets.PRESETS["gpt2-small"], "causal": False}), causal)
  )
  assert full - half == 6 * 12 * 768 * 1024  # causal attention costs half of 12·L·d·T


def test_compare_without_torch_is_one_line(capsys, monkeypatch):
  monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
  code, lines, err = _bench(capsys, "--compare=hf-torch")
  assert code == 2 and lines == []
  assert err.strip().splitlines() == [
    "jaxpretrain: error: --compare=hf-torch needs PyTorch and transformers: pip install 'jaxpretrain[torch]'"
  ]


def test_unknown_compare_is_one_line(capsys):
  code, _, err = _bench(capsys, "--compare=tf")
  assert code == 2 and err.strip() == "jaxpretrain: error: --compare='tf'; choose hf-torch (or leave it out)"


def test_causal_lm_bench_runs_or_says_it_is_missing(capsys):
  code, lines, err = _bench(
    capsys,
    "--config.task.name=causal_lm",
    "--config.model.causal=true",
    "--config.model.pre_layer_norm=true",
    "--config.model.use_pooler=false",
  )
  if importlib.util.find_spec("jaxpretrain.tasks.causal_lm") is None:
    assert (
      code == 2 and err.strip() == "jaxpretrain: error: bench: task.name=causal_lm is not available in this version"
    )
  else:
    assert code == 0 and json.loads(lines[0])["task"] == "causal_lm"


@pytest.mark.parametrize(
  "override,message",
  [
    ("--config.task.head_positions=mask", "task.head_positions='mask'; choose masked or all"),
    ("--config.model.packed_positions=reset", "model.packed_positions='reset'; choose restart or continue"),
  ],
)
def test_speed_switch_typos_are_one_line_errors(capsys, override, message):
  code, lines, err = _bench(capsys, override)
  assert code == 2 and lines == [] and err.strip() == f"jaxpretrain: error: {message}"


def test_documented_xla_gpu_flags_are_known_to_this_jaxlib():
  # XLA rejects unknown flags at backend start-up, on every platform: a renamed flag fails here.
  spec = importlib.util.spec_from_file_location("gpu_table", os.path.join(ROOT, "benchmarks", "gpu_table.py"))
  gpu_table = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(gpu_table)
  env = dict(os.environ, XLA_FLAGS=gpu_table.PERF_FLAGS, JAX_PLATFORMS="cpu")
  proc = subprocess.run(
    [sys.executable, "-c", "import jax; print(jax.numpy.ones(2).sum())"],
    env=env,
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert proc.returncode == 0 and proc.stdout.strip() == "2.0", proc.stderr[-500:]
  with open(os.path.join(ROOT, "docs", "performance.md")) as f:
    assert gpu_table.PERF_FLAGS in f.read()


TINY_DIMS = [
  "--config.data.seq_len=16",
  "--config.train.batch_size=8",
  "--config.model.num_hidden_layers=2",
  "--config.model.hidden_size=32",
  "--config.model.intermediate_size=48",
  "--config.model.vocab_size=256",
  "--config.model.max_position_embeddings=32",
]


@pytest.mark.parametrize(
  "name,overrides,architecture,expected",
  [
    (
      "modernbert_tiny",
      ["--config.model.sliding_window=4", "--config.model.global_attn_every_n_layers=2"],
      "ModernBertForMaskedLM",
      dict(
        local_attention=8,
        layer_types=["full_attention", "sliding_attention"],
        num_attention_heads=2,
        intermediate_size=48,
        attention_bias=False,
        mlp_bias=False,
        norm_bias=False,
        hidden_activation="gelu",
      ),
    ),
    (
      "llama_tiny",
      [],
      "LlamaForCausalLM",
      dict(
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        intermediate_size=48,
        attention_bias=False,
        mlp_bias=False,
        tie_word_embeddings=False,
        hidden_act="silu",
      ),
    ),
  ],
)
def test_compare_runs_the_families_own_hf_model(capsys, name, overrides, architecture, expected):
  pytest.importorskip("torch")
  from jaxpretrain import config as config_lib
  from jaxpretrain.commands.bench import hf_torch

  args = [f"--config=configs/{name}.py", *TINY_DIMS, *overrides]
  code = cli.main(["bench", *args, "--steps=1", "--rounds=1", "--warmup=0", "--compare=hf-torch"])
  out, err = capsys.readouterr()
  assert code == 0, err
  row = json.loads(out)
  # Same parameter count as ours: the gated MLP, GQA, bias-free linears and (un)tied head all match.
  assert row["hf_torch_model"] == architecture and row["hf_torch_params"] == row["params"] > 0
  config = config_lib.load(name)
  config_lib.apply_overrides(config, [a.removeprefix("--") for a in args[1:]])
  cfg = ModelConfig.from_config(config.model)
  reference = hf_torch.hf_model(cfg, config.task.name)
  assert reference.config.model_type == hf_torch.reference_family(cfg, config.task.name) == name.split("_")[0]
  assert reference.config._attn_implementation == "sdpa"
  assert {key: getattr(reference.config, key) for key in expected} == expected


def test_compare_without_a_torch_counterpart_is_one_line(monkeypatch):
  from jaxpretrain import config as config_lib
  from jaxpretrain.commands.bench import hf_torch
  from jaxpretrain.errors import UserError

  config = config_lib.load("modernbert_tiny")
  cfg = ModelConfig.from_config(config.model)
  old = types.SimpleNamespace(__version__="4.40.0")  # a transformers from before ModernBERT
  monkeypatch.setattr(hf_torch, "import_torch", lambda: (None, old))
  with pytest.raises(UserError) as e:
    hf_torch.hf_model(cfg, "mlm")
  assert str(e.value) == (
    "--compare=hf-torch: transformers 4.40.0 has no ModernBertForMaskedLM (model.family=modernbert); "
    "upgrade transformers"
  )
  with pytest.raises(UserError) as e:  # Llama has no masked-LM architecture
    hf_torch.hf_model(ModelConfig.from_config(config_lib.load("llama_tiny").model), "mlm")
  assert str(e.value) == "--compare=hf-torch: a llama model has no HF architecture for task.name=mlm"
