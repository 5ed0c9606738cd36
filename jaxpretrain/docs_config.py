"""Generates docs/configuration.md: every config key, its default and its meaning.

The keys and defaults come from `config.defaults()`; the meanings from the comments on (and just
above) each key's line in jaxpretrain/config.py, so the page is written by the code it describes.
Keys whose name is the whole story there (mostly Hugging Face `BertConfig` fields) take their
meaning from `PLAIN_MEANINGS` below. `tests/test_docs.py` fails when the committed page differs
from the generated one.

  python -m jaxpretrain.docs_config            # rewrite docs/configuration.md
  python -m jaxpretrain.docs_config --check    # exit 1 if it is stale
"""
from __future__ import annotations

import ast
import io
import json
import os
import sys
import tokenize

import ml_collections

from jaxpretrain import config as config_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUT = os.path.join(ROOT, "docs", "configuration.md")

# Meanings of keys that carry no comment in config.py: their names follow Hugging Face's BertConfig
# or optax, so the comment would only repeat the name.
PLAIN_MEANINGS = {
    "model.vocab_size": "token vocabulary size (embedding rows and MLM output classes)",
    "model.hidden_size": "width of the hidden states (BertConfig.hidden_size)",
    "model.num_hidden_layers": "Transformer layers",
    "model.num_attention_heads": "attention heads per layer (hidden_size must divide by it)",
    "model.intermediate_size": "width of the feed-forward layer inside each block",
    "model.max_position_embeddings": "learned position embeddings: the longest sequence the model accepts",
    "model.type_vocab_size": "token type (segment A/B) embeddings; 0 = none (GPT-2)",
    "model.hidden_act": "feed-forward activation: gelu | gelu_new | relu | ...",
    "model.hidden_dropout_prob": "dropout on embeddings and each block's outputs",
    "model.attention_probs_dropout_prob": "dropout on attention probabilities",
    "model.layer_norm_eps": "LayerNorm epsilon",
    "model.initializer_range": "std of the truncated-normal weight initializer",
    "data.seq_len": "tokens per training row (packed rows for pretraining)",
    "data.records_per_shard": "`prepare`: records per ArrayRecord shard file",
    "data.source_field": "translation: record field holding the source text",
    "data.target_field": "translation: record field holding the target text",
    "task.mask_prob": "mlm: share of tokens selected for prediction",
    "task.mask_token_prob": "mlm: share of selected tokens replaced by [MASK]",
    "task.random_token_prob": "mlm: share of selected tokens replaced by a random token (the rest stay)",
    "task.classifier_dropout": "dropout before the classification head",
    "train.steps": "optimizer steps (ignored when train.num_epochs > 0)",
    "train.seed": "seed of parameter init, data order, masking and dropout",
    "train.learning_rate": "peak learning rate (reached at the end of warmup)",
    "train.warmup_steps": "linear warmup steps from 0 to the peak learning rate",
    "train.weight_decay": "AdamW decoupled weight decay (not applied to biases and LayerNorm)",
    "train.adam_b1": "Adam beta1",
    "train.adam_b2": "Adam beta2",
    "train.adam_eps": "Adam epsilon",
    "train.grad_accum_steps": "micro-batches accumulated per optimizer step (divides train.batch_size)",
    "train.log_every": "steps between metrics.jsonl training rows",
    "checkpoint.every_steps": "steps between checkpoints (the final step is always saved)",
    "checkpoint.keep": "latest checkpoints kept (plus the best by eval.metric when evaluating periodically)",
    "checkpoint.async_save": "write checkpoints in the background while training continues",
    "mesh.fsdp": "devices that shard parameters and optimizer state (FSDP / ZeRO-3)",
    "mesh.tensor": "devices that split attention heads and MLP columns (tensor parallelism)",
}


def _section_aliases(tree: ast.Module) -> tuple[ast.FunctionDef, dict[str, str]]:
  """The `defaults` function and its local-name -> section map (`m` -> `model`, `c` -> ``)."""
  fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "defaults")
  aliases = {"c": ""}
  for node in fn.body:
    # `c.model = m = ml_collections.ConfigDict()`: targets [Attribute c.model, Name m]
    if isinstance(node, ast.Assign) and len(node.targets) == 2 and isinstance(node.targets[1], ast.Name):
      aliases[node.targets[1].id] = node.targets[0].attr
  return fn, aliases


def source_comments(source: str) -> dict[str, str]:
  """Dotted key -> the comment text on its lines, its indented continuation lines, and a comment
  block directly above it, in source order.

  Args:
    source: the text of jaxpretrain/config.py.

  Returns:
    {"model.hidden_size": "...", ...} for every key assigned in `defaults()` (empty string if none).
  """
  comments: dict[int, tuple[int, str]] = {}  # line -> (column, text)
  code_lines: set[int] = set()
  for tok in tokenize.generate_tokens(io.StringIO(source).readline):
    if tok.type == tokenize.COMMENT:
      comments[tok.start[0]] = (tok.start[1], tok.string.lstrip("#").strip())
    elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER):
      code_lines.add(tok.start[0])
  fn, aliases = _section_aliases(ast.parse(source))
  result = {}
  for node in fn.body:
    if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Attribute)
            and isinstance(node.targets[0].value, ast.Name) and node.targets[0].value.id in aliases):
      continue
    section = aliases[node.targets[0].value.id]
    key = f"{section}.{node.targets[0].attr}" if section else node.targets[0].attr
    above, line = [], node.lineno - 1
    # A comment block introducing this key starts in the key's own column (continuation lines of
    # the previous key's trailing comment start further right).
    while line in comments and line not in code_lines and comments[line][0] == node.col_offset:
      above.insert(0, comments[line][1])
      line -= 1
    own = [comments[n][1] for n in range(node.lineno, node.end_lineno + 1) if n in comments]
    trailing_column = comments.get(node.lineno, (None,))[0]
    line = node.end_lineno + 1
    # Continuation lines: comment-only lines aligned with this key's trailing comment.
    while trailing_column is not None and line in comments and line not in code_lines \
        and comments[line][0] == trailing_column:
      own.append(comments[line][1])
      line += 1
    result[key] = " ".join(above + own).strip()
  return result


def _flat(config: ml_collections.ConfigDict, prefix: str = "") -> list[tuple[str, object]]:
  rows = []
  for name, value in config.items():
    key = f"{prefix}{name}"
    if isinstance(value, ml_collections.ConfigDict):
      rows.extend(_flat(value, f"{key}."))
    else:
      rows.append((key, value))
  return rows


def _cell(text: str) -> str:
  return text.replace("|", "\\|")


def render() -> str:
  """The text of docs/configuration.md."""
  with open(config_lib.__file__, encoding="utf-8") as f:
    comments = source_comments(f.read())
  values = dict(_flat(config_lib.defaults()))
  # Source order (the order config.py presents them in), then any key set outside `defaults()`'s body.
  rows = [(k, values[k]) for k in comments if k in values] + [(k, v) for k, v in values.items() if k not in comments]
  missing = [k for k, _ in rows if not comments.get(k) and k not in PLAIN_MEANINGS]
  if missing:
    raise ValueError(f"config keys without a meaning (comment them in config.py): {', '.join(missing)}")
  out = ["# Configuration", "",
         "<!-- Generated by `python -m jaxpretrain.docs_config` from `jaxpretrain.config.defaults()` and the",
         "     comments in jaxpretrain/config.py. Do not edit by hand; tests/test_docs.py checks it. -->", "",
         "A config file (`configs/NAME.py`) defines `get_config()`, which starts from `config.defaults()` and",
         "changes what it needs. Any key can be overridden on the command line with its dotted name:",
         "`--config.train.steps=100`. An unknown key is an error naming it. A run saves its resolved config",
         "as `WORKDIR/config.json`."]
  section = None
  for key, value in rows:
    current = key.split(".")[0] if "." in key else "(top level)"
    if current != section:
      section = current
      out += ["", f"## `{section}`" if "." in key else "## Top level", "", "| key | default | meaning |",
              "| --- | --- | --- |"]
    meaning = comments.get(key) or PLAIN_MEANINGS[key]
    default = json.dumps(value) if not isinstance(value, str) else repr(value)
    out.append(f"| `{key}` | `{_cell(default)}` | {_cell(meaning)} |")
  return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  text = render()
  if "--check" in argv:
    with open(OUTPUT, encoding="utf-8") as f:
      stale = f.read() != text
    if stale:
      print(f"{OUTPUT} is stale: run python -m jaxpretrain.docs_config", file=sys.stderr)
    return int(stale)
  with open(OUTPUT, "w", encoding="utf-8") as f:
    f.write(text)
  print(OUTPUT)
  return 0


if __name__ == "__main__":
  sys.exit(main())
