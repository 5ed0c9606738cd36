"""docs/configuration.md is generated from the code; the reproduction configs carry the published recipe."""
import os
import re

import pytest

from jaxpretrain import config as config_lib
from jaxpretrain import docs_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_committed_configuration_md_is_the_generated_one():
  with open(docs_config.OUTPUT, encoding="utf-8") as f:
    committed = f.read()
  assert committed == docs_config.render(), "docs/configuration.md is stale: run python -m jaxpretrain.docs_config"


def test_every_default_key_is_documented_with_its_default():
  text = docs_config.render()
  rows = dict(re.findall(r"^\| `([\w.]+)` \| `(.*?)` \|", text, re.M))
  flat = dict(docs_config._flat(config_lib.defaults()))  # pylint: disable=protected-access
  assert set(rows) == set(flat)
  assert rows["train.learning_rate"] == "0.0001" and rows["model.hidden_act"] == "'gelu'"


SOURCE = '''
def defaults():
  c = ml_collections.ConfigDict()
  c.init_from = ""      # where to start
  c.model = m = ml_collections.ConfigDict()
  m.width = 8           # units per layer;
                        # a continuation line
  # A block introducing the next key,
  # over two lines.
  m.mode = "a"
  m.plain = 1
'''


def test_source_comments_joins_trailing_continuation_and_block_comments():
  comments = docs_config.source_comments(SOURCE)
  assert comments == {"init_from": "where to start", "model.width": "units per layer; a continuation line",
                      "model.mode": "A block introducing the next key, over two lines.", "model.plain": ""}


def test_an_undocumented_key_fails_the_generator(monkeypatch):
  original = config_lib.defaults

  def with_new_key():
    c = original()
    c.train.brand_new_key = 3
    return c

  monkeypatch.setattr(config_lib, "defaults", with_new_key)
  with pytest.raises(ValueError, match="train.brand_new_key"):
    docs_config.render()


@pytest.mark.parametrize("name,dims", [("bert_base", (12, 768, 12, 3072)), ("bert_large", (24, 1024, 16, 4096))])
def test_bert_configs_carry_the_published_recipe(name, dims):
  c = config_lib.load(name)
  m = c.model
  assert (m.num_hidden_layers, m.hidden_size, m.num_attention_heads, m.intermediate_size) == dims
  assert m.vocab_size == 30522 and c.task.name == "mlm" and c.data.train.startswith("tfds:wikipedia")
  t = c.train
  assert (c.data.seq_len, t.batch_size, t.steps, t.learning_rate, t.warmup_steps, t.schedule, t.weight_decay) == \
      (128, 256, 1_000_000, 1e-4, 10_000, "linear", 0.01)


def test_docs_link_to_files_that_exist():
  for page in ("architecture.md", "bert_base.md"):
    with open(os.path.join(ROOT, "docs", page), encoding="utf-8") as f:
      text = f.read()
    for target in re.findall(r"\]\(([^)#]+?)(?:#[^)]*)?\)", text):
      if "://" not in target:
        assert os.path.exists(os.path.join(ROOT, "docs", target)), f"docs/{page} links to missing {target}"
