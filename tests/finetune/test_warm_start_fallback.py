"""`init_from=RUN` passes over the run's corrupt latest step; a corrupt `init_step` is an error."""

import shutil

import jax
import numpy as np
import pytest

from jaxpretrain import checkpoint as checkpoint_lib
from jaxpretrain.errors import UserError
from jaxpretrain.train import warm_start
from tests.checkpoint.test_readers_fallback import truncate
from tests.finetune.helpers import finetune_config
from tests.finetune.test_warm_start import _fresh_state


def test_warm_start_from_a_run_with_a_corrupt_latest_step(pretrained, tmp_path, capsys):
  source = str(tmp_path / "pretrained")
  shutil.copytree(pretrained, source)
  truncate(source, 4)
  config = finetune_config(init_from=source)
  fresh, strategy = _fresh_state(config, str(tmp_path / "tune"))
  capsys.readouterr()
  warm = warm_start.apply(config, fresh, strategy)
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and "checkpoint step 4 " in err[0] and err[0].endswith("using step 2"), err
  at_2 = checkpoint_lib.restore_params(checkpoint_lib.item_path(source, 2))["encoder"]
  kernel = lambda p: np.asarray(p["layer_0"]["mlp"]["intermediate"]["kernel"])
  np.testing.assert_array_equal(kernel(jax.device_get(warm.params["encoder"])), kernel(at_2))
  config = finetune_config(init_from=source, init_step=4)
  with pytest.raises(UserError, match=r"init_from=.*: checkpoint step 4 .* is incomplete or corrupt"):
    warm_start.apply(config, fresh, strategy)
