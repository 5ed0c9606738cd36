"""Compile time of a first and a second `configs/tiny.py` run: the persistent compilation cache at work.

    python benchmarks/compile_cache.py [--config=configs/tiny.py] [--workdir=DIR] [--keep]

Runs `jaxpretrain pretrain` four times, each in a fresh process, with a new, empty jaxpretrain
cache (`JAXPRETRAIN_CACHE`, so `train.compilation_cache_dir=auto` starts cold and nothing of
~/.cache is read or written):

1. `first`: the cold run; it compiles the train and eval steps and writes them to the cache;
2. `second`: the same config in a new workdir (on the first run's prepared data): loads them;
3. `resume`: the first workdir again, the same command, after its last checkpoint was deleted (as a
   crash before that save would leave it): resumes from the one before and loads them;
4. `no_cache`: `train.compilation_cache_dir=""` in a new workdir: compiles, as a run without the cache does.

Prints one JSON line per run: `compile_s` (from the first row of its metrics.jsonl: seconds from
the start of the first step to its result, which is tracing, compiling or loading from the cache,
and running it once) and `wall_s` (the whole command, Python start-up and data included).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _pretrain(config: str, workdir: str, env: dict, *overrides: str) -> dict:
  argv = [sys.executable, "-m", "jaxpretrain", "pretrain", f"--config={config}", f"--workdir={workdir}"]
  argv += ["--config.train.progress=false", *overrides]
  start = time.perf_counter()
  done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
  wall = time.perf_counter() - start
  if done.returncode:
    sys.exit(f"{' '.join(argv)} failed:\n{done.stderr[-3000:]}")
  rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl")) if line.strip()]
  timed = [r for r in rows if "compile_s" in r]
  return {"compile_s": round(timed[-1]["compile_s"], 2), "wall_s": round(wall, 2)}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", default="configs/tiny.py")
  parser.add_argument("--workdir", default="", help="where the runs go (default: a temporary directory)")
  parser.add_argument("--keep", action="store_true", help="keep the runs and the cache")
  args = parser.parse_args()
  base = os.path.abspath(args.workdir) if args.workdir else tempfile.mkdtemp(prefix="compile-cache-")
  cache = os.path.join(base, "cache")
  os.makedirs(cache, exist_ok=True)
  env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
  env["JAXPRETRAIN_CACHE"] = cache
  first, data = os.path.join(base, "first"), os.path.join(base, "first", "data")
  runs = [
    ("first", first, ()),
    ("second", os.path.join(base, "second"), (f"--config.data.prepared_dir={data}",)),
    ("resume", first, ()),
    (
      "no_cache",
      os.path.join(base, "no_cache"),
      (f"--config.data.prepared_dir={data}", "--config.train.compilation_cache_dir="),
    ),
  ]
  for name, workdir, overrides in runs:
    if name == "resume":  # the same config must resume: drop the final checkpoint, keep an earlier one
      saved = sorted(int(s) for s in os.listdir(os.path.join(first, "checkpoints")) if s.isdigit())
      if len(saved) < 2:
        sys.exit(f"{args.config} saves fewer than two checkpoints: nothing to resume from")
      shutil.rmtree(os.path.join(first, "checkpoints", str(saved[-1])))
    print(
      json.dumps({"run": name, "config": args.config, **_pretrain(args.config, workdir, env, *overrides)}), flush=True
    )
  if not args.keep:
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
  main()
