"""The package's imports run one way: commands and the demo sit on the library, never the reverse.

Every `import` in jaxpretrain/ (top level and inside functions) is read with `ast` and checked
against LAYERS: a module may import modules of its own layer or of lower layers only.
"""

import ast
import os

import pytest

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "jaxpretrain")

# Lowest first. A module belongs to the layer of the longest prefix that names it.
LAYERS = [
  ["jaxpretrain", "jaxpretrain.errors"],
  ["jaxpretrain.parallel.mesh", "jaxpretrain.parallel.rules"],  # mesh axes and sharding rules: plain data
  ["jaxpretrain.config", "jaxpretrain.config_schema", "jaxpretrain.models.families"],  # families: plain data
  ["jaxpretrain.models"],
  ["jaxpretrain.data"],
  ["jaxpretrain.checkpoint"],
  ["jaxpretrain.tasks"],
  ["jaxpretrain.configs"],  # config files: defaults, model presets, and the suite table's tasks
  ["jaxpretrain.hf"],
  ["jaxpretrain.train"],  # the state, step, optimizer and their helpers ...
  ["jaxpretrain.parallel"],  # ... which the strategies compile ...
  ["jaxpretrain.train.loop", "jaxpretrain.train.setup"],  # ... and the driver runs
  ["jaxpretrain.docs_config"],
  ["jaxpretrain.commands"],
  ["jaxpretrain.demo"],
  ["jaxpretrain.cli", "jaxpretrain.__main__"],  # `python -m jaxpretrain` is the CLI
]
RANK = {prefix: i for i, layer in enumerate(LAYERS) for prefix in layer}


def layer_of(module: str) -> int:
  parts = module.split(".")
  for n in range(len(parts), 0, -1):
    prefix = ".".join(parts[:n])
    if prefix in RANK:
      return RANK[prefix]
  raise KeyError(module)


def _module_name(path: str) -> str:
  rel = os.path.relpath(path, os.path.dirname(ROOT))[:-3].replace(os.sep, ".")
  return rel.removesuffix(".__init__")


def _imports(path: str):
  package = _module_name(path) if path.endswith("__init__.py") else _module_name(path).rpartition(".")[0]
  for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
    if isinstance(node, ast.Import):
      yield from (a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:  # relative import
        base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
      for alias in node.names:  # `from jaxpretrain import cli` names the module jaxpretrain.cli
        yield f"{base}.{alias.name}" if f"{base}.{alias.name}".removeprefix("jaxpretrain.") else base


def _sources():
  for folder, _, files in os.walk(ROOT):
    for name in files:
      if name.endswith(".py"):
        yield os.path.join(folder, name)


def upward_imports() -> list[str]:
  """'importer -> imported' for every import of a higher layer (modules that are not jaxpretrain's skipped)."""
  bad = []
  for path in _sources():
    importer = _module_name(path)
    for imported in _imports(path):
      if not imported.startswith("jaxpretrain"):
        continue
      # `from jaxpretrain.x import name` where name is not a module: judge by the module part.
      module = imported
      while module not in _all_modules() and "." in module:
        module = module.rpartition(".")[0]
      if layer_of(module) > layer_of(importer):
        bad.append(f"{importer} -> {module}")
  return sorted(set(bad))


_MODULES = None


def _all_modules() -> set:
  global _MODULES
  if _MODULES is None:
    _MODULES = {_module_name(p) for p in _sources()}
  return _MODULES


def test_every_module_has_a_layer():
  for module in _all_modules():
    layer_of(module)


def test_no_module_imports_a_higher_layer():
  assert upward_imports() == []


@pytest.mark.parametrize(
  "importer,imported,ok",
  [
    ("jaxpretrain.data.pretrain.loader", "jaxpretrain.tasks.mlm", False),
    ("jaxpretrain.train.loop", "jaxpretrain.parallel.strategy", True),
    ("jaxpretrain.parallel.strategy", "jaxpretrain.train.loop", False),
    ("jaxpretrain.tasks.translation", "jaxpretrain.commands.generate", False),
    ("jaxpretrain.cli", "jaxpretrain.commands.bench", True),
  ],
)
def test_the_order_itself(importer, imported, ok):
  assert (layer_of(imported) <= layer_of(importer)) == ok
