"""Both notebooks execute top to bottom on CPU (JAXPRETRAIN_NOTEBOOK_SMALL=1), so they never rot."""

import os
import re

import nbformat
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def execute(name: str, tmp_path, monkeypatch, **env) -> nbformat.NotebookNode:
  """Runs notebooks/NAME in a fresh kernel (small settings, working directory tmp_path)."""
  nb = nbformat.read(os.path.join(ROOT, "notebooks", name), as_version=4)
  # The kernel inherits this process's environment, conftest's 8 fake CPU devices included.
  monkeypatch.setenv("JAXPRETRAIN_NOTEBOOK_SMALL", "1")
  for key, value in env.items():
    monkeypatch.setenv(key, value)
  NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
  return nb


def outputs(nb, kind: str) -> list:
  """Text ('text'), markdown ('text/markdown') or PNG ('image/png') outputs of all code cells."""
  found = []
  for cell in nb.cells:
    for out in cell.get("outputs", []):
      if kind == "text" and out.get("output_type") == "stream" and out.get("name") == "stdout":
        found.append(out["text"])
      elif kind != "text" and kind in out.get("data", {}):
        found.append(out["data"][kind])
  return found


def test_quickstart_pretrains_finetunes_and_compares(tmp_path, monkeypatch):
  runs = tmp_path / "runs"
  nb = execute("colab_tpu_quickstart.ipynb", tmp_path, monkeypatch, JAXPRETRAIN_NOTEBOOK_RUNS=str(runs))
  text = "".join(outputs(nb, "text"))
  assert "mesh axes: {'data': 8, 'fsdp': 1, 'tensor': 1}" in text  # conftest's 8 CPU devices
  assert re.search(r'"step": 20', text)  # the pretraining summary
  assert {"10", "20"} <= set(re.findall(r"^(\d+) complete", text, re.M))  # checkpoints listed
  assert len(outputs(nb, "image/png")) >= 2  # loss + learning-rate plots inline
  table = "".join(outputs(nb, "text/markdown"))
  rows = dict(re.findall(r"^\| (pretrained|scratch) \| ([0-9.]+) \|", table, re.M))
  assert set(rows) == {"pretrained", "scratch"} and all(0.0 <= float(v) <= 1.0 for v in rows.values())
  for name in ("pretrain", "finetune-pretrained", "finetune-scratch"):
    assert os.path.exists(runs / name / "metrics.jsonl")


def test_inspect_checkpoint_prints_tree_and_masked_predictions(tmp_path, monkeypatch):
  workdir = tmp_path / "run"
  nb = execute("inspect_checkpoint.ipynb", tmp_path, monkeypatch, JAXPRETRAIN_NOTEBOOK_WORKDIR=str(workdir))
  text = "".join(outputs(nb, "text"))
  assert re.search(r"^step +20 +complete", text, re.M)
  # The tiny run's word embeddings: vocab 512 x hidden 32, saved replicated over the 8-device data axis.
  assert re.search(r"encoder/embeddings/word_embeddings/embedding +\(512, 32\) +float32", text)
  n_params = int(re.search(r"arrays, ([\d,]+) parameters", text).group(1).replace(",", ""))
  assert n_params > 512 * 32
  assert len(re.findall(r"^position \d+: truth .+ top-5: ", text, re.M)) >= 1
