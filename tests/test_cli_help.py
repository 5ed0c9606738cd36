"""What a user sees before running anything: each command's --help, and no stray library advice."""

import subprocess
import sys

import pytest

from jaxpretrain import cli


@pytest.mark.parametrize("command", ["prepare", "pretrain", "finetune", "evaluate", "demo", "bench"])
def test_help_of_a_config_command_says_config_is_needed_and_how_overrides_work(command, capsys):
  with pytest.raises(SystemExit) as exit_info:
    cli.main([command, "--help"])
  out = capsys.readouterr().out
  assert exit_info.value.code == 0
  assert "--config is needed to start a run" in out and "--config.KEY=VALUE" in out
  assert "--config.train.steps=10" in out and "docs/configuration.md" in out


def test_generate_help_shows_its_defaults(capsys):
  with pytest.raises(SystemExit):
    cli.main(["generate", "--help"])
  out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
  for default in ("(default: 32)", "(default: 1.0)", "(default: 0)"):
    assert default in out
  assert "(default: None)" not in out and "(default: False)" not in out


def test_no_pytorch_advice_from_transformers_when_torch_is_missing():
  # jaxpretrain needs transformers' tokenizers and configs only; hide torch as a machine without it would.
  code = (
    "import sys; sys.modules['torch'] = None\n"
    "import jaxpretrain.data.tokenizer, transformers\n"
    "print(transformers.utils.is_torch_available())\n"
  )
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0 and proc.stdout.strip() == "False", proc.stderr
  assert "PyTorch was not found" not in proc.stderr, proc.stderr
