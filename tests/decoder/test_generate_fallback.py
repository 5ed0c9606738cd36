"""`generate` passes over a corrupt latest checkpoint with one warning, and refuses a corrupt one asked for."""

import os
import shutil

import pytest

from jaxpretrain.commands.generate import generate
from jaxpretrain.errors import UserError
from tests.checkpoint.test_readers_fallback import truncate


def test_generate_uses_the_newest_step_that_loads(gpt_run, tmp_path, capsys):
  workdir = str(tmp_path / "w")
  shutil.copytree(gpt_run[0], workdir)
  truncate(workdir, 40)
  result = generate(workdir, ["the soup was"], max_new_tokens=2, temperature=0)
  assert result["step"] == 20
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and "checkpoint step 40 " in err[0] and err[0].endswith("using step 20"), err
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["20", "40"]  # nothing moved
  with pytest.raises(UserError, match=r"checkpoint step 40 .* is incomplete or corrupt"):
    generate(workdir, ["the soup was"], max_new_tokens=2, step=40)
