"""docs/configuration.md is generated from the code; the reproduction configs carry the published recipe."""

import os
import re

import pytest

from jaxpretrain import config as config_lib
from jaxpretrain import config_schema, docs_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_committed_configuration_md_is_the_generated_one():
  with open(docs_config.OUTPUT, encoding="utf-8") as f:
    committed = f.read()
  assert committed == docs_config.render(), "docs/configuration.md is stale: run python -m jaxpretrain.docs_config"


def test_every_key_is_documented_with_its_default_and_allowed_values():
  text = docs_config.render()
  rows = {
    key: (default, allowed)
    for key, default, allowed in re.findall(r"^\| `([\w.]+)` \| `(.*?)` \| (.*?) \|", text, re.M)
  }
  flat = config_schema.flatten(config_lib.defaults())
  demo = [k for k in config_schema.flatten(config_lib.load("demo")) if k.startswith("demo.")]
  assert set(rows) == set(flat) | set(demo) == set(config_schema.KEYS)
  assert rows["train.learning_rate"] == ("0.0001", "number > 0") and rows["model.hidden_act"][0] == "'gelu'"
  assert rows["checkpoint.keep"][1] == "integer >= 1" and rows["train.schedule"][1] == "linear, cosine or constant"
  assert rows["demo.budgets"][0] == "[128, 256, 512, 1024]"


def test_the_page_says_config_files_are_code_and_config_json_is_data():
  text = docs_config.render()
  assert "**Config files are Python code**" in text and "run only" in text and "plain JSON data" in text


def test_a_default_key_without_a_row_in_the_table_fails_the_generator(monkeypatch):
  original = config_lib.defaults
  monkeypatch.setattr(config_lib, "defaults", lambda: _with_key(original(), "train"))
  with pytest.raises(ValueError, match="train.brand_new_key"):
    docs_config.render()


def test_a_demo_key_without_a_row_in_the_table_fails_the_generator(monkeypatch):
  original = config_lib.load
  monkeypatch.setattr(config_lib, "load", lambda name: _with_key(original(name), "demo"))
  with pytest.raises(ValueError, match="demo.brand_new_key"):
    docs_config.render()


def _with_key(config, section):
  config[section].brand_new_key = 3
  return config


def test_a_row_for_a_key_no_config_has_fails_the_generator(monkeypatch):
  monkeypatch.setitem(config_schema.KEYS, "train.gone_key", config_schema.flag("removed long ago"))
  with pytest.raises(ValueError, match="train.gone_key"):
    docs_config.render()


@pytest.mark.parametrize("name,dims", [("bert_base", (12, 768, 12, 3072)), ("bert_large", (24, 1024, 16, 4096))])
def test_bert_configs_carry_the_published_recipe(name, dims):
  c = config_lib.load(name)
  m = c.model
  assert (m.num_hidden_layers, m.hidden_size, m.num_attention_heads, m.intermediate_size) == dims
  assert m.vocab_size == 30522 and c.task.name == "mlm" and c.data.train.startswith("tfds:wikipedia")
  t = c.train
  assert (c.data.seq_len, t.batch_size, t.steps, t.learning_rate, t.warmup_steps, t.schedule, t.weight_decay) == (
    128,
    256,
    1_000_000,
    1e-4,
    10_000,
    "linear",
    0.01,
  )


def test_docs_link_to_files_that_exist():
  for page in ("architecture.md", "bert_base.md"):
    with open(os.path.join(ROOT, "docs", page), encoding="utf-8") as f:
      text = f.read()
    for target in re.findall(r"\]\(([^)#]+?)(?:#[^)]*)?\)", text):
      if "://" not in target:
        assert os.path.exists(os.path.join(ROOT, "docs", target)), f"docs/{page} links to missing {target}"
