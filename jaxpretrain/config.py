"""Configs: `configs/NAME.py` files with `get_config()`, strict dotted overrides, saved runs.

A config is an `ml_collections.ConfigDict` with the sections `model`, `data`, `task`, `train`,
`eval`, `checkpoint`, `profile`, `tracking`, `mesh` (see `configs/tiny.py`). Overrides use the same dotted names as the
CLI (`train.steps=10`); a key that does not exist is an error naming it, so a typo never silently
trains the default. What each key means and allows, and `validate`, are in `config_schema`.
A config file is Python code, executed on load; a run's config.json is data.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
from collections.abc import Iterable
from typing import Any

import ml_collections

from jaxpretrain import config_schema, files, paths
from jaxpretrain.errors import UserError

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")  # shipped in the package


def load(path_or_name: str) -> ml_collections.ConfigDict:
  """Loads `get_config()` from a config file path, or a shipped config by name.

  A bare name (`tiny`, `glue/cola`) and a relative `configs/NAME.py` that does not exist from the
  current directory both name the config shipped in the package (`jaxpretrain/configs/NAME.py`), so
  the README's `--config=configs/tiny.py` works from any directory after `pip install`.

  Args:
    path_or_name: `configs/tiny.py`, any config file path, `tiny`, or `glue/cola` (a subdirectory's).

  Returns:
    The (unlocked) config.
  """
  path = path_or_name
  if not os.path.exists(path):
    head = os.path.dirname(path)
    if not path.endswith(".py"):
      path = os.path.join(CONFIG_DIR, f"{path_or_name}.py")
    elif os.path.normpath(head).split(os.sep)[0] == "configs":  # configs/NAME.py, configs/glue/NAME.py
      path = os.path.join(CONFIG_DIR, os.path.relpath(path, "configs"))
  if not os.path.isfile(path):
    raise UserError(f"config file not found: {path_or_name}")
  spec = importlib.util.spec_from_file_location(f"_jaxpretrain_config_{abs(hash(path))}", path)
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
  except Exception as e:  # a broken config file is the user's to fix; say where
    raise UserError(f"config file {path} failed to load: {type(e).__name__}: {e}") from None
  if not hasattr(module, "get_config"):
    raise UserError(f"config file {path} has no get_config()")
  return module.get_config()


def _parse_value(text: str, current: Any, key: str) -> Any:
  """Parses an override's text into the type of the value it replaces."""
  if isinstance(current, bool):
    low = text.lower()
    if low in ("true", "1", "yes"):
      return True
    if low in ("false", "0", "no"):
      return False
    raise UserError(f"config key {key} expects true/false, got {text!r}")
  if isinstance(current, int):
    try:
      return int(text)
    except ValueError:
      try:
        as_float = float(text)
      except ValueError:
        raise UserError(f"config key {key} expects an integer, got {text!r}") from None
      if as_float.is_integer():
        return int(as_float)
      raise UserError(f"config key {key} expects an integer, got {text!r}") from None
  if isinstance(current, float):
    try:
      return float(text)
    except ValueError:
      raise UserError(f"config key {key} expects a number, got {text!r}") from None
  if isinstance(current, str):
    return text
  if current is None or isinstance(current, (list, tuple, dict)):
    try:
      return ast.literal_eval(text)
    except (ValueError, SyntaxError):
      return text  # a plain string for a key whose default is None
  raise UserError(f"config key {key} cannot be set from the command line")


def apply_overrides(config: ml_collections.ConfigDict, overrides: Iterable[str | tuple[str, str]]):
  """Applies `key=value` overrides in place; an unknown key is a `UserError` naming it (and the
  closest known key: `unknown config key: train.stpes (did you mean train.steps?)`).

  Args:
    config: the config to change.
    overrides: strings `a.b.c=value` (a leading `config.` or `--config.` is accepted) or
      `(key, value_text)` pairs.
  """
  for item in overrides:
    if isinstance(item, str):
      if "=" not in item:
        raise UserError(f"config override {item!r} is not of the form key=value")
      key, text = item.split("=", 1)
    else:
      key, text = item
    key = key.removeprefix("--").removeprefix("config.")
    parts = key.split(".")
    node = config
    for i, part in enumerate(parts[:-1]):
      if not isinstance(node, ml_collections.ConfigDict) or part not in node:
        raise UserError(
          f"unknown config key: {key} (no section {'.'.join(parts[: i + 1])})"
          f"{config_schema.did_you_mean(key, config_schema.flatten(config))}"
        )
      node = node[part]
    leaf = parts[-1]
    if not isinstance(node, ml_collections.ConfigDict) or leaf not in node:
      raise UserError(f"unknown config key: {key}{config_schema.did_you_mean(key, config_schema.flatten(config))}")
    if isinstance(node[leaf], ml_collections.ConfigDict):
      raise UserError(f"config key {key} is a section; set one of its keys instead")
    value = _parse_value(text, node[leaf], key) if isinstance(text, str) else text
    try:
      node[leaf] = value
    except TypeError as e:
      raise UserError(f"config key {key}: {e}") from None
    if key != "overridden_keys" and key not in config.overridden_keys:
      config.overridden_keys = [*config.overridden_keys, key]


def to_dict(config: ml_collections.ConfigDict) -> dict:
  """The config as plain JSON-able Python data."""
  return json.loads(config.to_json_best_effort())


def from_dict(data: dict) -> ml_collections.ConfigDict:
  """Rebuilds a config saved by `save` (workdir/config.json)."""
  return ml_collections.ConfigDict(data)


def save(config: ml_collections.ConfigDict, path: str) -> None:
  """Writes the resolved config as JSON, atomically (`path` may be remote: see `paths.py`)."""
  paths.write_text(path, json.dumps(to_dict(config), indent=2, sort_keys=True))


def load_saved(workdir: str) -> ml_collections.ConfigDict:
  """Reads `WORKDIR/config.json` written by a previous run."""
  path = paths.join(workdir, "config.json")
  if not paths.isfile(path):
    raise UserError(f"no run in {workdir}: config.json not found")
  saved = files.read_json(path, "run config")
  # Keys added to `defaults()` after the run was saved take their defaults, so older runs stay
  # usable (evaluate, resume); every key the run saved keeps its saved value.
  merged = to_dict(defaults())
  _merge(merged, saved)
  return from_dict(merged)


def _merge(base: dict, update: dict) -> None:
  for key, value in update.items():
    if isinstance(value, dict) and isinstance(base.get(key), dict):
      _merge(base[key], value)
    else:
      base[key] = value


def defaults() -> ml_collections.ConfigDict:
  """Every config key with its default; `configs/*.py` start from this and change what they need.

  Model keys use Hugging Face `BertConfig` names where one exists. Each key's meaning and allowed
  values are in `config_schema.KEYS` (docs/configuration.md is generated from it); a new key needs
  a row there.
  """
  c = ml_collections.ConfigDict()
  c.init_from = ""  # pretraining workdir (or hf:PATH) whose encoder a fine-tune starts from
  c.init_step = -1  # checkpoint step to start from; -1 = latest
  c.init_weights = True  # hf: init_from: False = the HF architecture with fresh random weights
  c.hf_allow_pickle = False  # hf: init_from: accept pickled pytorch_model.bin (--allow_pickle)
  c.overridden_keys = []  # the keys KEY=VALUE overrides set (apply_overrides records them)

  c.model = m = ml_collections.ConfigDict()
  m.preset = ""  # informational: the preset the dims came from
  m.vocab_size = 30522
  m.hidden_size = 768
  m.num_hidden_layers = 12
  m.num_attention_heads = 12
  m.intermediate_size = 3072
  m.max_position_embeddings = 512
  m.type_vocab_size = 2
  m.hidden_act = "gelu"
  m.hidden_dropout_prob = 0.1
  m.attention_probs_dropout_prob = 0.1
  m.layer_norm_eps = 1e-12
  m.initializer_range = 0.02
  m.pre_layer_norm = False  # False: post-LN as in BERT; True: pre-LN as in GPT-2
  m.causal = False  # True: each position attends to itself and earlier ones
  m.use_pooler = True  # BERT's [CLS] dense+tanh pooler
  m.dtype = "float32"  # compute dtype; parameters stay float32
  m.attention = "xla"  # xla | cudnn | auto  (jax.nn.dot_product_attention)
  m.remat = "none"  # none | dots | full
  m.scan_layers = False  # scan over layers: one layer compiled once
  # Packed rows (segment_ids 1, 2, ...): restart = each document's positions count from 0, so a
  # packed batch computes exactly what its documents would unpacked; continue = 0..seq_len-1.
  m.packed_positions = "restart"
  m.position_offset = 0  # RoBERTa: 2 (= padding_idx + 1); pads take position offset - 1
  # The block switches of the newer families (defaults = BERT's; models/families.py says which
  # values each family fixes; auto = the switches alone, the family inferred from them).
  m.family = "auto"  # auto | bert | roberta | gpt2 | modernbert | llama
  m.position_embedding_type = "absolute"  # absolute | rotary
  m.rope_theta = 10000.0  # rotary base of global layers
  m.local_rope_theta = 10000.0  # rotary base of sliding-window layers
  m.norm_type = "layer_norm"  # layer_norm | rms_norm
  m.norm_bias = True
  m.use_bias = True  # biases of the attention / MLP linears and the heads' transform
  m.gated_mlp = False  # GeGLU (gelu) / SwiGLU (silu)
  m.pre_ln_embedding_norm = False  # pre-LN models: normalize the embeddings too (ModernBERT)
  m.num_key_value_heads = 0  # 0 = num_attention_heads; fewer = grouped-query attention
  m.sliding_window = 0  # local layers attend within |q - k| <= sliding_window; 0 = all global
  m.global_attn_every_n_layers = 1  # layer i is global iff i % n == 0
  m.tie_word_embeddings = True
  m.classifier_transform = False  # fine-tuning heads: dense + activation + norm first (ModernBERT)

  c.data = d = ml_collections.ConfigDict()
  d.train = "embedded"  # embedded | file path | glob | tfds:NAME/CONFIG:split | hf:NAME/CONFIG:split | hf:DIR
  d.eval = ""  # held-out data; "" = the held-out slice of data.train
  d.seq_len = 128
  d.tokenizer = ""  # HF tokenizer directory (DIR or hf:DIR); "" = train one on the corpus
  d.tokenizer_type = "auto"  # auto | wordpiece | bpe | unigram: the one trained; auto = by task.name
  # (wordpiece for encoders, byte-level bpe for causal_lm and translation)
  d.prepared_dir = ""  # where `prepare` writes; "" = WORKDIR/data
  d.eval_fraction = 0.01  # share of documents held out for evaluation
  d.embedded_documents = 40000  # size of the embedded corpus (documents)
  d.records_per_shard = 10000
  d.prefetch = 2  # batches prefetched to device
  d.packing = "auto"  # auto | bert | gpt: rows as [CLS] a [SEP] b [SEP] (MLM) or
  # [BOS] a [EOS][BOS] b [EOS] (causal LM); auto = by task.name
  # Fine-tuning data (task.name classification | regression | token_classification | qa):
  d.train_examples = 0  # labeled training examples: the embedded task's label budget
  # (0 = 1000); for files and tfds a cap (0 = all)
  d.eval_examples = 0  # evaluation examples (0 = all; embedded test split: 2000)
  d.doc_stride = 128  # QA: tokens shared by consecutive windows of a long context
  # Fine-tuning batches padded to the shortest of at most this many lengths (multiples of 8 chosen
  # from the data) their rows fit, each compiled once; 0 = every batch padded to seq_len.
  d.length_buckets = 4
  d.length_grouping = 50  # fine-tuning: rows sorted by length within windows of this many batches; 0 = off
  # Translation pairs (task.name translation): the fields of .jsonl / tfds records holding source
  # and target text; "" = `source`/`target`, or a tfds dataset's supervised keys (e.g. de, en).
  d.source_field = ""
  d.target_field = ""
  # Columns of hf: datasets, .jsonl/.csv/.tsv rows and tfds records (docs/data.md); "" = guessed
  # (text, sentence, ...; sentence1/sentence2, ...; label).
  d.text_column = ""
  d.text_pair_column = ""  # the second text of a pair (needs text_column)
  d.label_column = ""

  c.task = t = ml_collections.ConfigDict()
  t.name = "mlm"  # mlm | causal_lm | classification | regression | token_classification | qa
  # | translation (a decoder fine-tuned on `source <sep> target`)
  t.mask_prob = 0.15
  t.mask_token_prob = 0.8
  t.random_token_prob = 0.1
  t.head_positions = "masked"  # mlm: masked = head on the selected tokens only; all = every position
  t.max_predictions = 0  # mlm, masked head: scored tokens per row at most; 0 = 5 std above the mean
  t.num_labels = 0  # 0 = inferred from the training data
  t.pooling = "cls"  # cls | mean  (classification heads)
  t.classifier_dropout = 0.1
  t.max_answer_length = 30  # QA post-processing: longest answer in tokens
  t.n_best = 20  # QA post-processing: start/end candidates per window

  c.train = tr = ml_collections.ConfigDict()
  tr.steps = 1000
  tr.num_epochs = 0.0  # > 0: overrides steps with epochs over the training data
  tr.batch_size = 32  # global batch size
  tr.seed = 0
  tr.learning_rate = 1e-4
  tr.warmup_steps = 100
  tr.warmup_ratio = 0.0  # > 0: warmup = ceil(ratio x the run's steps), instead of warmup_steps
  tr.schedule = "linear"  # linear | cosine | constant (after warmup)
  tr.weight_decay = 0.01
  tr.adam_b1 = 0.9
  tr.adam_b2 = 0.999
  tr.adam_eps = 1e-6
  tr.max_grad_norm = 1.0  # global-norm clipping; 0 = off
  tr.grad_accum_steps = 1
  tr.log_every = 10
  tr.on_nonfinite = "raise"  # raise | skip
  tr.max_consecutive_skips = 10  # on_nonfinite=skip: stop with an error after this many skipped steps in a row
  tr.allow_data_change = False  # resume although data, tokenizer, seq_len, packing or batch size changed
  tr.progress = True  # progress bar on stderr
  tr.peak_tflops = 0.0  # one device's peak TFLOP/s for MFU; 0 = datasheet table, else measured (CPU)
  tr.compilation_cache_dir = "auto"  # persistent XLA cache; auto = ~/.cache/jaxpretrain/xla, "" = off

  c.eval = e = ml_collections.ConfigDict()
  e.every_steps = 0  # 0 = only at the end
  e.batches = 8  # evaluation batches per evaluation (pretraining)
  e.batch_size = 0  # 0 = train.batch_size
  e.metric = "loss"  # metric that picks the best checkpoint
  e.metric_mode = "min"  # min | max

  c.checkpoint = ck = ml_collections.ConfigDict()
  ck.every_steps = 500
  ck.keep = 3
  ck.async_save = True

  c.profile = pr = ml_collections.ConfigDict()
  pr.start_step = 10  # first traced step (metrics.jsonl numbering)
  pr.num_steps = 0  # steps traced into WORKDIR/profile; 0 = off
  pr.processes = [0]  # process indices that trace

  c.tracking = tk = ml_collections.ConfigDict()
  tk.wandb = False  # log the metrics rows and the config to Weights & Biases (pip install "jaxpretrain[wandb]")
  tk.project = ""  # W&B project; "" = W&B's default
  tk.entity = ""  # W&B team or user; "" = W&B's default
  tk.name = ""  # W&B run name; "" = W&B's default

  c.mesh = ms = ml_collections.ConfigDict()
  ms.strategy = "jit"  # jit | pmap
  ms.data = -1  # -1 = the devices the other axes leave
  ms.fsdp = 1
  ms.tensor = 1
  # Logical axis name -> mesh axes (MaxText style); `act_*` names are activations, the rest params.
  ms.rules = [
    ["act_batch", ["data", "fsdp"]],
    ["act_length", None],
    ["act_embed", None],
    ["act_heads", "tensor"],
    ["act_kv", None],
    ["act_kv_heads", "tensor"],
    ["act_mlp", "tensor"],
    ["act_vocab", "tensor"],
    ["vocab", "tensor"],
    ["embed", "fsdp"],
    ["embed_out", "tensor"],
    ["heads", "tensor"],
    ["kv_heads", "tensor"],  # grouped-query key/value heads (replicated where they do not divide)
    ["kv", None],
    ["mlp", "tensor"],
    ["position", None],
    ["type", None],
    ["norm", None],
    ["labels", None],
    ["layers", None],
  ]
  return c
