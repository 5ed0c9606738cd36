"""`init_from=hf:DIR`: the architecture comes from config.json; an override that contradicts it is an error."""

import pytest

from jaxpretrain import config as config_lib
from jaxpretrain.errors import UserError
from jaxpretrain.hf.importer import apply_hf_config
from tests.hf import helpers


def _config(directory, *overrides):
  c = config_lib.load("configs/finetune_from_hf.py")
  config_lib.apply_overrides(c, [f"init_from=hf:{directory}", "task.name=classification", *overrides])
  return c


def test_an_override_that_contradicts_config_json_is_an_error(tmp_path):
  helpers.write_checkpoint(tmp_path, "BertForSequenceClassification", "bert")
  hidden = helpers.hf_config("bert").hidden_size
  with pytest.raises(
    UserError,
    match=rf"^model.hidden_size={hidden * 2} contradicts init_from=hf:{tmp_path}, whose model.hidden_size={hidden};",
  ):
    apply_hf_config(_config(tmp_path, f"model.hidden_size={hidden * 2}"))


def test_an_override_that_agrees_with_config_json_and_training_choices_are_kept(tmp_path, capsys):
  helpers.write_checkpoint(tmp_path, "BertForSequenceClassification", "bert")
  hidden = helpers.hf_config("bert").hidden_size
  c = _config(tmp_path, f"model.hidden_size={hidden}", "model.hidden_dropout_prob=0.0", "model.dtype=bfloat16")
  apply_hf_config(c)
  assert (c.model.hidden_size, c.model.hidden_dropout_prob, c.model.dtype) == (hidden, 0.0, "bfloat16")
  assert "hidden_size" not in capsys.readouterr().err  # nothing changed there, so the note does not name it
