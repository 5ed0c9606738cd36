"""The GPU table: correctness checks, `jaxpretrain bench` rows with profiles, and the anchors, in one run.

    python benchmarks/gpu_table.py [--budget_s=570] [--steps=20] [--out=FILE.jsonl] [--jobs=a,b,...]

Runs, most important first, each in its own process and within a total time budget (what does
not fit is listed as skipped); `--jobs` picks and orders them:
  check        benchmarks/gpu_check.py: one step on the GPU equals the CPU's; cuDNN attention
               equals XLA's with padding and packing;
  base, large, gpt2
               jaxpretrain bench: bert-base-128 b256, bert-large-512 b32, gpt2-1024 b32, dropout 0,
               each followed by a traced window of 3 steps summarised by benchmarks/trace_summary.py
               (device time by kernel category; the trace is copied beside --out);
  probe2, jaxref, hf
               the anchors (benchmarks/anchors/, copies of the shared reference scripts): plain Flax
               with the masked-only head, plain Flax with full logits (GPT-2), HF PyTorch eager;
  base-dropout, large-dropout, gpt2-dropout
               the bench rows with dropout 0.1/0.1 (BERT's default);
  base-maxpred20, large-maxpred80, base-b512
               the masked head capped at BERT's max_predictions_per_seq (20 at 128, 80 at 512);
               bert-base at batch 512;
  base-hidden-dropout, base-rbg, base-flags
               bert-base with hidden dropout only (keeps cuDNN attention), with
               JAX_DEFAULT_PRNG_IMPL=unsafe_rbg, and with the XLA flags of docs/performance.md.
Every result is one JSON object in --out (default benchmarks/results/gpu-DATE.jsonl); markdown
tables go to stdout.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # trace_summary lies beside this script
import trace_summary

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANCHORS = os.path.join(ROOT, "benchmarks", "anchors")
CONFIGS = {
  "bert-base-128": "benchmarks/configs/bert_base_128.py",
  "bert-large-512": "benchmarks/configs/bert_large_512.py",
  "gpt2-1024": "benchmarks/configs/gpt2_1024.py",
}
TARGETS = {"bert-base-128": 850_000, "bert-large-512": 270_000, "gpt2-1024": 550_000}  # tokens/s, issue 7
SHORT = {"base": "bert-base-128", "large": "bert-large-512", "gpt2": "gpt2-1024"}  # --jobs names
PROFILE_STEPS = 3
# The XLA flags docs/performance.md suggests (verified to parse with the pinned jaxlib).
PERF_FLAGS = "--xla_gpu_enable_latency_hiding_scheduler=true --xla_gpu_enable_triton_gemm=false"


# --smoke: the same jobs at toy sizes, to check this script on a CPU in a minute or two.
SMOKE = [
  "--config.model.num_hidden_layers=1",
  "--config.model.hidden_size=64",
  "--config.model.num_attention_heads=2",
  "--config.model.intermediate_size=128",
  "--config.data.seq_len=64",
  "--config.train.batch_size=4",
  "--config.model.dtype=float32",
  "--warmup=1",
]


def _bench_job(
  name, hidden_dropout, attention_dropout, *, steps, xla_flags="", prng="", smoke=False, profile_dir="", overrides=()
):
  argv = [
    sys.executable,
    "-m",
    "jaxpretrain.cli",
    "bench",
    f"--config={CONFIGS[name]}",
    f"--steps={steps}",
    "--rounds=2",
    f"--config.model.hidden_dropout_prob={hidden_dropout}",
    f"--config.model.attention_probs_dropout_prob={attention_dropout}",
    *(SMOKE if smoke else []),
    *overrides,
  ]
  if profile_dir:
    argv += [f"--profile_dir={profile_dir}", f"--profile_steps={PROFILE_STEPS}"]
  label = {
    "system": "jaxpretrain"
    + (" +xla-flags" if xla_flags else "")
    + (f" +prng={prng}" if prng else "")
    + "".join(f" {o.removeprefix('--config.')}" for o in overrides),
    "config": name,
    "dropout": f"{hidden_dropout}/{attention_dropout}",
  }
  env = ({"XLA_FLAGS": xla_flags} if xla_flags else {}) | ({"JAX_DEFAULT_PRNG_IMPL": prng} if prng else {})
  return label, argv, env, ROOT


def _anchor_job(script, *configs):
  label = {"system": script.removesuffix(".py"), "config": " ".join(configs) or "all"}
  return label, [sys.executable, script, *configs], {}, ANCHORS


def jobs(steps: int, smoke: bool = False, profile_root: str = "") -> dict:
  """{name: (label, argv, extra env, cwd)} in priority order (`--jobs` picks and orders them)."""
  bench = lambda *a, **kw: _bench_job(*a, steps=steps, smoke=smoke, **kw)
  profile = lambda name: os.path.join(profile_root, name) if profile_root else ""
  out = {
    "check": (
      {"system": "gpu_check", "config": "correctness"},
      [sys.executable, "benchmarks/gpu_check.py", *(["--smoke"] if smoke else [])],
      {},
      ROOT,
    )
  }
  out |= {short: bench(n, 0.0, 0.0, profile_dir=profile(short)) for short, n in SHORT.items()}
  if not smoke:  # the probe has no CPU-sized variant
    out["probe2"] = _anchor_job("jax_probe2.py")
  # Plain Flax with logits on every position: the like-for-like anchor for GPT-2 (its BERT rows are
  # in the shared results; probe2 is the like-for-like BERT anchor, with the masked-only head).
  out["jaxref"] = _anchor_job("jax_ref_anchor.py", "gpt2-1024")
  out["hf"] = _anchor_job("hf_torch_anchor.py", "bert-base-128", "bert-large-512", "gpt2-1024")
  out |= {
    "base-maxpred20": bench("bert-base-128", 0.0, 0.0, overrides=["--config.task.max_predictions=20"]),
    "large-maxpred80": bench("bert-large-512", 0.0, 0.0, overrides=["--config.task.max_predictions=80"]),
    "base-b512": bench("bert-base-128", 0.0, 0.0, overrides=["--config.train.batch_size=512"]),
  }
  out |= {f"{short}-dropout": bench(n, 0.1, 0.1) for short, n in SHORT.items()}
  out |= {
    "base-hidden-dropout": bench("bert-base-128", 0.1, 0.0),
    "base-rbg": bench("bert-base-128", 0.1, 0.1, prng="unsafe_rbg"),
    "base-flags": bench("bert-base-128", 0.0, 0.0, xla_flags=PERF_FLAGS),
  }
  return out


def run_job(label, argv, env, cwd, timeout_s) -> list[dict]:
  """Runs one job; returns its JSON rows (or one row with the error / timeout)."""
  start = time.perf_counter()
  try:
    proc = subprocess.run(argv, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout_s)
  except subprocess.TimeoutExpired:
    return [dict(label, error=f"timed out after {timeout_s:.0f}s")]
  rows = []
  for line in proc.stdout.splitlines():
    if line.startswith("{"):
      try:
        rows.append({**label, **json.loads(line)})
      except json.JSONDecodeError:
        pass
  if proc.returncode != 0 or not rows:
    last = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
    rows.append(dict(label, error=last[:300]))
  for row in rows:
    row["wall_s"] = round(time.perf_counter() - start, 1)
  return rows


def _fmt(x, digits=0):
  if x is None:
    return ""
  return f"{x:,.{digits}f}" if isinstance(x, (int, float)) else str(x)


def table(rows: list[dict], targets: bool = True) -> str:
  """A markdown table of the throughput rows (errors and skips included); `targets` marks met/missed."""
  head = [
    "system",
    "config",
    "batch",
    "dropout (hidden/attn)",
    "step ms",
    "tokens/s",
    "target",
    "TFLOP/s",
    "MFU",
    "compile s",
    "peak mem GB",
    "W",
    "mJ/token",
    "note",
  ]
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for r in rows:
    if "tokens_per_s" not in r and "error" not in r:
      continue
    dropout = r.get("dropout") or ("0.1/0.1" if r["system"].startswith("hf-torch") else "0/0")
    target = TARGETS.get(r.get("config", "").split()[0]) if targets and r["system"].startswith("jaxpretrain") else None
    met = "" if target is None or "tokens_per_s" not in r else (" met" if r["tokens_per_s"] >= target else " missed")
    mem = r.get("peak_memory_bytes") or (r.get("max_mem_gb", 0) * 2**30 if "max_mem_gb" in r else None)
    jpt = r.get("joules_per_token")
    lines.append(
      "| "
      + " | ".join(
        [
          r["system"],
          str(r.get("config", "")),
          _fmt(r.get("batch")),
          dropout,
          _fmt(r.get("step_ms"), 2),
          _fmt(r.get("tokens_per_s")),
          (_fmt(target) + met) if target else "",
          _fmt(r.get("tflops"), 1),
          _fmt(r.get("mfu"), 3),
          _fmt(r.get("compile_s", r.get("warmup_s")), 1),
          _fmt(mem / 2**30 if mem else None, 1),
          _fmt(r.get("avg_power_w")),
          _fmt(jpt * 1e3 if jpt else None, 3),
          r.get("error", ""),
        ]
      )
      + " |"
    )
  return "\n".join(lines)


def header() -> dict:
  """Date, commit (with uncommitted state), GPU and versions."""

  def out(*argv):
    try:
      return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
      return ""

  dirty = bool(out("git", "status", "--porcelain", "--untracked-files=no"))
  versions = out(
    sys.executable, "-c", "import jax, flax; print(jax.__version__, flax.__version__, jax.default_backend())"
  ).split()
  torch_cuda = out(sys.executable, "-c", "import torch; print(torch.__version__, torch.cuda.is_available())").split()
  # A copy of the tree without .git (a remote GPU machine) names its commit in GPU_TABLE_COMMIT.
  commit = os.environ.get("GPU_TABLE_COMMIT") or (
    out("git", "rev-parse", "--short", "HEAD") + (" + uncommitted changes" if dirty else "")
  )
  return {
    "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    "commit": commit,
    "gpu": out("nvidia-smi", "--query-gpu=name,driver_version,power.limit", "--format=csv,noheader"),
    "jax": versions[0] if versions else "",
    "flax": versions[1] if len(versions) > 1 else "",
    "jax_backend": versions[2] if len(versions) > 2 else "",
    "torch": torch_cuda[0] if torch_cuda else "not installed",
    "torch_cuda": len(torch_cuda) > 1 and torch_cuda[1] == "True",
  }


def _profile_rows(rows: list[dict], profile_dir: str, copy_to: str) -> None:
  """Adds a `profile` summary (benchmarks/trace_summary.py) to the bench rows; copies the trace."""
  try:
    summary = trace_summary.summarize_dir(profile_dir, PROFILE_STEPS)
  except (OSError, ValueError) as e:
    summary = {"error": str(e)[:300]}
  if copy_to and "trace" in summary:
    shutil.copyfile(summary["trace"], copy_to)
    summary["trace"] = copy_to
  for row in rows:
    if "tokens_per_s" in row:
      row["profile"] = summary
      print(
        f"\nprofile of {row['config']} (dropout {row['dropout']}, {row['step_ms']} ms/step):\n"
        f"{trace_summary.markdown(summary)}\n",
        flush=True,
      )


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--budget_s", type=float, default=570, help="total wall-clock budget")
  parser.add_argument("--steps", type=int, default=20, help="timed steps per bench row")
  # bert-large-512 (24 unrolled layers) did not finish compile + timing + trace in 120 s on an H200.
  parser.add_argument("--job_timeout_s", type=float, default=240, help="cap for one job")
  parser.add_argument("--out", default="", help="JSONL output (default benchmarks/results/gpu-DATE.jsonl)")
  parser.add_argument(
    "--jobs",
    default="",
    help="comma-separated job names to run, in this order (default all: "
    "check, base, large, gpt2, probe2, jaxref, hf, then the dropout and extra rows)",
  )
  parser.add_argument("--no_profile", action="store_true", help="do not trace the dropout-0 bench rows")
  parser.add_argument("--smoke", action="store_true", help="toy sizes: check the script itself on a CPU")
  args = parser.parse_args()
  start = time.perf_counter()
  out_path = args.out or os.path.join(ROOT, "benchmarks", "results", f"gpu-{datetime.date.today().isoformat()}.jsonl")
  out_dir = os.path.dirname(os.path.abspath(out_path))
  os.makedirs(out_dir, exist_ok=True)
  profile_root = "" if args.no_profile else tempfile.mkdtemp(prefix="gpu_table_profiles_")
  all_jobs = jobs(args.steps, args.smoke, profile_root)
  names = [n.strip() for n in args.jobs.split(",") if n.strip()] or list(all_jobs)
  unknown = [n for n in names if n not in all_jobs]
  if unknown:
    print(f"gpu_table: unknown job {unknown[0]!r}; choose from {', '.join(all_jobs)}", file=sys.stderr)
    return 2
  meta = header()
  print(json.dumps(meta), flush=True)
  if meta["jax_backend"] != "gpu" and not args.smoke:
    print("gpu_table: JAX sees no GPU here; use --smoke to check the script on a CPU", file=sys.stderr)
    return 2
  rows = []
  with open(out_path, "w") as f:
    f.write(json.dumps(meta) + "\n")
    for name in names:
      label, argv, env, cwd = all_jobs[name]
      left = args.budget_s - (time.perf_counter() - start)
      if left < 30:
        new = [dict(label, error="skipped: time budget spent")]
      elif label["system"] == "hf_torch_anchor" and not meta["torch_cuda"] and not args.smoke:
        new = [dict(label, error=f"skipped: PyTorch {meta['torch']} has no CUDA here")]
      else:
        new = run_job(label, argv, env, cwd, min(left, args.job_timeout_s))
      if name in SHORT and profile_root:
        _profile_rows(new, os.path.join(profile_root, name), os.path.join(out_dir, f"trace-{name}.json.gz"))
      for row in new:
        print(json.dumps(row), flush=True)
        f.write(json.dumps(row) + "\n")
        f.flush()
      rows += new
  print(
    f"\n{meta['date']}, commit {meta['commit']}, {meta['gpu']}, jax {meta['jax']}, "
    f"total {time.perf_counter() - start:.0f}s\n"
  )
  checks = [r for r in rows if "check" in r]
  if checks:
    print("| correctness check | ok | errors |\n|---|---|---|")
    for r in checks:
      errors = {k: v for k, v in r.items() if k.endswith("err") or k in ("out", "dq", "dk", "dv")}
      print(f"| {r['check']} | {'yes' if r['ok'] else 'NO'} | {errors} |")
    print()
  print(table(rows, targets=not args.smoke))
  return 0


if __name__ == "__main__":
  sys.exit(main())
