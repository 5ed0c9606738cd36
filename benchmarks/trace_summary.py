"""Where a traced training step spends its device time, from a `jax.profiler` Perfetto trace.

    python benchmarks/trace_summary.py PROFILE_DIR [--steps=N] [--top=12]

Reads the newest `perfetto_trace.json.gz` under PROFILE_DIR (what `jaxpretrain bench
--profile_dir=DIR` writes), takes the kernels that ran on the GPU streams, and prints one JSON
line: per step, the time kernels ran (`kernel_ms`), the time at least one kernel ran
(`busy_ms`), the span from the first kernel to the last (`span_ms`), that time split into
categories by kernel name (matmul, attention, elementwise/fusion, reductions, copies), and the
longest kernels. `span_ms - busy_ms` is device idle time inside the traced steps (launch gaps,
host work). On a CPU-only trace there are no device streams and the summary says so.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import re
import sys

# First match wins: attention kernels (cuDNN flash: "...sdpa...flash_fprop...") also contain
# "sm90"/"wgmma", which the matmul pattern would otherwise claim.
CATEGORIES = (
  ("attention", re.compile(r"sdpa|flash|fmha|attn|attention|cudnn", re.I)),
  ("matmul", re.compile(r"gemm|nvjet|cutlass|xmma|cublas|matmul|wgmma|triton_dot|__dot|dot_", re.I)),
  ("copy", re.compile(r"^memcpy|^memset|memcpy|memset|^copy|transpose", re.I)),
  ("reduction", re.compile(r"reduce|reduction|softmax|top_?k|sort|scatter|gather|select_and", re.I)),
  ("elementwise", re.compile(r"fusion|loop_|input_|wrapped_|convert|add|multiply|triton", re.I)),
)
_NON_KERNEL_THREADS = re.compile(r"XLA Ops|XLA Modules|Steps|TensorFlow|Framework|Launch Stats|Source", re.I)


def category(kernel_name: str) -> str:
  """The category of a GPU kernel, by its name (see CATEGORIES); "other" when none matches."""
  for name, pattern in CATEGORIES:
    if pattern.search(kernel_name):
      return name
  return "other"


def find_trace(profile_dir: str) -> str:
  """The newest perfetto_trace.json.gz below `profile_dir` (FileNotFoundError if none)."""
  paths = glob.glob(os.path.join(profile_dir, "**", "perfetto_trace.json.gz"), recursive=True)
  if not paths:
    raise FileNotFoundError(f"no perfetto_trace.json.gz under {profile_dir}")
  return max(paths, key=os.path.getmtime)


def device_kernels(events: list[dict]) -> list[dict]:
  """The complete ("X") events that ran on a GPU stream."""
  process_names, thread_names = {}, {}
  for e in events:
    if e.get("ph") == "M" and e.get("name") == "process_name":
      process_names[e["pid"]] = e.get("args", {}).get("name", "")
    elif e.get("ph") == "M" and e.get("name") == "thread_name":
      thread_names[(e["pid"], e.get("tid"))] = e.get("args", {}).get("name", "")
  devices = {pid for pid, name in process_names.items() if "/device:GPU" in name or "/device:gpu" in name}
  kernels = []
  for e in events:
    if e.get("ph") != "X" or e.get("pid") not in devices:
      continue
    thread = thread_names.get((e["pid"], e.get("tid")), "")
    if _NON_KERNEL_THREADS.search(thread):
      continue
    kernels.append(e)
  return kernels


def _union_length(intervals: list[tuple[float, float]]) -> float:
  total, end = 0.0, float("-inf")
  for start, stop in sorted(intervals):
    if stop <= end:
      continue
    total += stop - max(start, end)
    end = stop
  return total


def summarize(events: list[dict], steps: int, top: int = 12) -> dict:
  """Per-step device time of the traced steps, by category and by kernel.

  Args:
    events: the trace's `traceEvents` (times in microseconds).
    steps: how many training steps the trace holds (divides every figure).
    top: how many of the longest kernels to list.

  Returns:
    A dict of milliseconds per step (see the module docstring); {"error": ...} without GPU kernels.
  """
  kernels = device_kernels(events)
  if not kernels:
    return {"error": "no GPU kernels in the trace (a CPU run?)"}
  per_step = lambda us: round(us / 1e3 / steps, 3)
  by_category, by_kernel, counts = collections.Counter(), collections.Counter(), collections.Counter()
  for e in kernels:
    by_category[category(e["name"])] += e["dur"]
    by_kernel[e["name"]] += e["dur"]
    counts[e["name"]] += 1
  total = sum(by_category.values())
  busy = _union_length([(e["ts"], e["ts"] + e["dur"]) for e in kernels])
  span = max(e["ts"] + e["dur"] for e in kernels) - min(e["ts"] for e in kernels)
  return {
    "steps": steps,
    "kernels_per_step": round(len(kernels) / steps, 1),
    "kernel_ms": per_step(total),
    "busy_ms": per_step(busy),
    "span_ms": per_step(span),
    "idle_share": round(1 - busy / span, 4) if span else 0.0,
    "categories_ms": {k: per_step(v) for k, v in by_category.most_common()},
    "categories_share": {k: round(v / total, 4) for k, v in by_category.most_common()},
    "top_kernels": [
      {"name": name[:120], "ms": per_step(us), "calls": counts[name] / steps, "category": category(name)}
      for name, us in by_kernel.most_common(top)
    ],
  }


def summarize_dir(profile_dir: str, steps: int, top: int = 12) -> dict:
  """`summarize` of the newest trace under `profile_dir`, with the trace's path."""
  path = find_trace(profile_dir)
  with gzip.open(path, "rt") as f:
    data = json.load(f)
  events = data["traceEvents"] if isinstance(data, dict) else data
  return {"trace": path, **summarize(events, steps, top)}


def markdown(summary: dict) -> str:
  """The summary as a short markdown table (categories, then the longest kernels)."""
  if "error" in summary:
    return summary["error"]
  lines = [
    f"per step: kernels {summary['kernel_ms']} ms, device busy {summary['busy_ms']} ms, "
    f"span {summary['span_ms']} ms (idle {summary['idle_share']:.1%}), "
    f"{summary['kernels_per_step']} kernels",
    "",
    "| category | ms/step | share |",
    "|---|---:|---:|",
  ]
  for name, ms in summary["categories_ms"].items():
    lines.append(f"| {name} | {ms} | {summary['categories_share'][name]:.1%} |")
  lines += ["", "| kernel | category | ms/step | calls/step |", "|---|---|---:|---:|"]
  for k in summary["top_kernels"]:
    lines.append(f"| `{k['name'][:80]}` | {k['category']} | {k['ms']} | {k['calls']:g} |")
  return "\n".join(lines)


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("profile_dir")
  parser.add_argument("--steps", type=int, default=3, help="training steps in the trace")
  parser.add_argument("--top", type=int, default=12, help="longest kernels to list")
  args = parser.parse_args()
  try:
    summary = summarize_dir(args.profile_dir, args.steps, args.top)
  except (OSError, ValueError) as e:
    print(f"trace_summary: {e}", file=sys.stderr)
    return 2
  print(json.dumps(summary))
  print(markdown(summary))
  return 0


if __name__ == "__main__":
  sys.exit(main())
