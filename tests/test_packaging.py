"""A non-editable install works from any directory: the wheel ships the configs, and
`jaxpretrain demo --small` and a named config run from an empty working directory.

The wheel is built once (no build isolation: setuptools is already installed) and installed
without dependencies into a venv that sees this interpreter's packages, so the test needs no
network; the venv's own jaxpretrain shadows the editable checkout.
"""

import json
import os
import shutil
import subprocess
import sys
import venv

import pytest

from jaxpretrain import demo
from jaxpretrain.demo import METHODS, targets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.xdist_group("packaging")  # one worker builds the wheel once


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
  """(jaxpretrain executable, env) of a venv holding the freshly built wheel."""
  base = tmp_path_factory.mktemp("wheel")
  # Build from a clean copy: an in-place build reuses build/lib, where modules deleted from the
  # source tree would still be packed into the wheel.
  src = base / "src"
  shutil.copytree(os.path.join(ROOT, "jaxpretrain"), src / "jaxpretrain", ignore=shutil.ignore_patterns("__pycache__"))
  for name in ("pyproject.toml", "README.md"):
    shutil.copy(os.path.join(ROOT, name), src / name)
  subprocess.run(
    [
      sys.executable,
      "-m",
      "pip",
      "wheel",
      "--no-deps",
      "--no-build-isolation",
      "-q",
      "-w",
      str(base / "dist"),
      str(src),
    ],
    check=True,
    capture_output=True,
  )
  (wheel,) = (base / "dist").glob("jaxpretrain-*.whl")
  env_dir = base / "venv"
  venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
  python = env_dir / "bin" / "python"
  subprocess.run(
    [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
    check=True,
    capture_output=True,
  )
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"  # one device, as a user's laptop has
  where = subprocess.run(
    [str(python), "-c", "import jaxpretrain; print(jaxpretrain.__file__)"],
    env=env,
    cwd=base,
    check=True,
    capture_output=True,
    text=True,
  ).stdout.strip()
  assert where.startswith(str(env_dir)), f"the venv imports {where}, not its own install"
  return str(env_dir / "bin" / "jaxpretrain"), env


def test_wheel_ships_every_config(installed, tmp_path):
  jaxpretrain, env = installed

  def configs(root):  # every config file, in subdirectories too (glue/cola.py), and their packages' __init__.py
    return sorted(
      os.path.relpath(os.path.join(d, f), root) for d, _, names in os.walk(root) for f in names if f.endswith(".py")
    )

  shipped = configs(os.path.join(ROOT, "jaxpretrain", "configs"))
  assert "glue/cola.py" in shipped and "glue/__init__.py" in shipped
  code = (
    "import os, jaxpretrain.config as c; "
    "print(sorted(os.path.relpath(os.path.join(d, f), c.CONFIG_DIR) for d, _, n in os.walk(c.CONFIG_DIR) "
    "for f in n if f.endswith('.py'))); "
    "print(c.load('glue/stsb').task.name)"  # a suite's config loads by name from the installed package
  )
  out = subprocess.run(
    [os.path.join(os.path.dirname(jaxpretrain), "python"), "-c", code],
    env=env,
    cwd=tmp_path,
    check=True,
    capture_output=True,
    text=True,
  ).stdout
  listed, stsb_task = out.strip().splitlines()
  assert json.loads(listed.replace("'", '"')) == shipped
  assert stsb_task == "regression"


@pytest.mark.slow
@pytest.mark.parametrize("config", ["tiny", "configs/tiny.py"])
def test_named_config_runs_from_an_empty_directory(installed, tmp_path, config):
  jaxpretrain, env = installed
  proc = subprocess.run(
    [
      jaxpretrain,
      "pretrain",
      f"--config={config}",
      "--workdir=w",
      "--config.train.steps=2",
      "--config.train.progress=false",
      "--config.data.embedded_documents=300",
      "--config.data.eval_fraction=0.05",
      "--config.train.batch_size=8",
    ],
    env=env,
    cwd=tmp_path,
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  summary = json.loads(proc.stdout.strip().splitlines()[-1])
  assert summary["step"] == 2
  assert os.path.isfile(tmp_path / "w" / "config.json") and os.path.isdir(tmp_path / "w" / "checkpoints")


@pytest.mark.slow
def test_small_demo_from_an_empty_directory_writes_demo_json_report_and_plots(installed, tmp_path):
  jaxpretrain, env = installed
  proc = subprocess.run(
    [jaxpretrain, "demo", "--workdir=demo", "--small", "--config.train.progress=false"],
    env=env,
    cwd=tmp_path,
    capture_output=True,
    text=True,
    timeout=900,
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  workdir = tmp_path / "demo"
  with open(workdir / "demo.json") as f:
    result = json.load(f)
  assert json.loads(proc.stdout.strip().splitlines()[-1]) == result
  assert set(result) == {"budgets", "accuracy", "std", "seeds", "seconds"}
  # The time by phase: every phase, adding up to the total, printed at the end and in the report.
  assert list(result["seconds"]) == [*demo.PHASES, "total"]
  assert sum(result["seconds"][p] for p in demo.PHASES) == pytest.approx(result["seconds"]["total"], abs=0.3)
  assert result["seconds"]["pretrain"] > 0 and result["seconds"]["finetune"] > 0
  table = proc.stderr[proc.stderr.index("time by phase:") :].splitlines()
  assert [line.split("|")[1].strip() for line in table[3:9]] == [*demo.PHASES, "total"], table
  assert result["budgets"] == [8, 16] and result["seeds"] == 3
  for key in ("accuracy", "std"):
    assert set(result[key]) == set(METHODS)
    for method in METHODS:
      assert set(result[key][method]) == {"8", "16"}
      assert all(0.0 <= v <= 1.0 for v in result[key][method].values())
  # 64 test examples: every mean is a multiple of 1/64 / 3 seeds.
  assert all(abs(v * 64 * 3 - round(v * 64 * 3)) < 1e-6 for m in METHODS for v in result["accuracy"][m].values())
  report = (workdir / "report.md").read_text()
  assert "| 16 |" in report and "accuracy_vs_labels.png" in report and "pretrain_loss.png" in report
  assert "## Time by phase" in report and f"| total | {result['seconds']['total']:.1f} | 100% |" in report
  for claim, ok in targets(result).items():
    assert f"- {claim}: **{'yes' if ok else 'no'}**" in report
  for png in ("accuracy_vs_labels.png", "pretrain_loss.png"):
    assert (workdir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert (workdir / "pretrain" / "checkpoints").is_dir()
  assert "[demo" in proc.stderr and "pretrain: done" in proc.stderr
  # A smoke run says that its targets are not expected to hold, instead of a bare "NO".
  target_lines = [line for line in proc.stderr.splitlines() if "target:" in line]
  assert len(target_lines) == 2 and all(line.endswith(demo.SMOKE_NOTE) for line in target_lines), target_lines
  assert "smoke run" in report
