"""The task table: every entry builds its task, unknown names fail listing the valid ones, and no
module but the table dispatches on a task name (nor do data/ and models/ reach up into tasks/)."""

import ast
import pathlib
import types

import jax
import pytest

import jaxpretrain
from jaxpretrain.errors import UserError
from jaxpretrain.models.config import ModelConfig
from jaxpretrain.tasks import registry
from tests.finetune.helpers import tiny_config

PACKAGE = pathlib.Path(jaxpretrain.__file__).parent
# The table itself, and the config defaults whose comments list the names.
MAY_NAME_TASKS = {"tasks/registry.py", "config.py"}


def _fake_data():
  """The parts of a `RunData` the task builders read: special ids, label names, the tokenizer."""
  return types.SimpleNamespace(
    info={"special_ids": {"mask": 4}, "label_names": ["B-X", "I-X", "O"]},
    tokenizer=types.SimpleNamespace(all_special_ids=[0, 1, 2, 3, 4], vocab_size=512),
  )


def _config(name: str):
  s = registry.spec(name)
  return tiny_config(task__name=name, model__causal=s.decoder, model__pre_layer_norm=s.decoder)


@pytest.mark.parametrize("name", list(registry.TASKS))
def test_every_task_in_the_table_builds_its_task(name):
  config = _config(name)
  task = registry.build_task(config, ModelConfig.from_config(config.model), _fake_data())
  assert task.name == name
  params = jax.eval_shape(lambda: task.init(jax.random.PRNGKey(0), 16))
  assert "encoder" in params  # (a causal LM's tied head has no parameters of its own)
  bench = registry.spec(name).bench
  if bench is not None:
    assert bench.build_task(config, ModelConfig.from_config(config.model)).name == name


def test_decoder_tasks_refuse_a_bidirectional_model():
  for name in (n for n, s in registry.TASKS.items() if s.decoder):
    config = tiny_config(task__name=name)
    with pytest.raises(UserError, match=f"^task.name={name} needs a decoder: set model.causal=true$"):
      registry.build_task(config, ModelConfig.from_config(config.model), _fake_data())


def test_an_unknown_task_name_is_a_user_error_naming_the_valid_ones():
  valid = ", ".join(registry.TASKS)
  assert valid == "mlm, causal_lm, classification, regression, token_classification, qa, translation"
  with pytest.raises(UserError, match=f"^task.name='nope'; choose one of {valid}$"):
    registry.spec("nope")
  config = tiny_config(task__name="nope")
  with pytest.raises(UserError, match="choose one of"):
    registry.build_data(config, "unused")
  with pytest.raises(UserError, match="choose one of"):
    registry.build_task(config, ModelConfig.from_config(config.model), _fake_data())


def test_hf_families_and_exports_come_from_the_table():
  from jaxpretrain.hf import families

  for family, f in families.FAMILIES.items():
    assert f.architectures == {
      n: s.hf_architectures[family] for n, s in registry.TASKS.items() if family in s.hf_architectures
    }
  assert families.ARCHITECTURES["BertForPreTraining"] == ("bert", "mlm")
  assert registry.spec("translation").export_task == "causal_lm" == registry.spec("causal_lm").export_task


def _sources():
  for path in sorted(PACKAGE.rglob("*.py")):
    yield path.relative_to(PACKAGE).as_posix(), ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _constants(node):
  if isinstance(node, ast.Constant):
    yield node
  elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
    for element in node.elts:
      yield from _constants(element)


def _is_task_name(node) -> bool:
  return isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in registry.TASKS


def test_no_module_but_the_table_compares_task_names():
  compared, collected = [], []
  for rel, tree in _sources():
    if rel in MAY_NAME_TASKS:
      continue
    for node in ast.walk(tree):
      if isinstance(node, ast.Compare):  # name == "qa", name in ("mlm", "causal_lm"), ...
        compared += [
          f"{rel}:{c.lineno}: {c.value!r}"
          for operand in (node.left, *node.comparators)
          for c in _constants(operand)
          if _is_task_name(c)
        ]
      elements = (
        node.elts
        if isinstance(node, (ast.Tuple, ast.List, ast.Set))
        else node.keys
        if isinstance(node, ast.Dict)
        else []
      )
      if sum(_is_task_name(e) for e in elements) >= 2:  # a second table: LABELED = ("qa", ...)
        collected.append(f"{rel}:{node.lineno}")
  assert not compared, f"task names compared outside tasks/registry.py: {compared}"
  assert not collected, f"collections of task names outside tasks/registry.py: {collected}"


def _imported_modules(tree):
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      yield node.module
      yield from (f"{node.module}.{alias.name}" for alias in node.names)


@pytest.mark.parametrize("layer,forbidden", [("data", ("tasks", "train")), ("models", ("tasks", "data"))])
def test_lower_layers_do_not_import_the_task_layer(layer, forbidden):
  prefixes = tuple(f"jaxpretrain.{f}" for f in forbidden)
  inside = tuple(p + "." for p in prefixes)
  bad = [
    f"{rel}: {module}"
    for rel, tree in _sources()
    if rel.startswith(f"{layer}/")
    for module in _imported_modules(tree)
    if module in prefixes or module.startswith(inside)
  ]
  assert not bad, f"jaxpretrain/{layer}/ imports {', '.join(forbidden)}: {bad}"
