"""The one table of config keys: what each means and which values it allows, and `validate`.

`KEYS` covers every key of `config.defaults()` plus the `demo.*` keys of `configs/demo.py`.
`validate(config)` checks a whole config against it (and the few rules that tie keys together)
before a command writes anything; docs/configuration.md is generated from the same table
(`python -m jaxpretrain.docs_config`). A new key needs a row here: `tests/test_docs.py` fails
without one.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
from collections.abc import Callable
from typing import Any

import ml_collections

from jaxpretrain.errors import UserError
from jaxpretrain.models import families


@dataclasses.dataclass(frozen=True)
class Spec:
  """One key: its meaning and allowed values.

  `kind` is bool | int | float | str | choice | list. Numbers lie in the interval `low`..`high`
  (open ends where `low_open`/`high_open`; None = unbounded), or are one of `special`, values
  outside the interval with a meaning of their own. A list key is checked by `list_check`.
  """

  doc: str
  kind: str
  choices: tuple[str, ...] = ()
  low: float | None = None
  high: float | None = None
  low_open: bool = False
  high_open: bool = False
  special: tuple[tuple[Any, str], ...] = ()
  nonempty: bool = False
  list_allowed: str = ""
  list_check: Callable[[str, Any], None] | None = None

  def allowed(self) -> str:
    """The allowed values in words, e.g. `integer >= 1, or 0 (= off)` or `linear, cosine or constant`."""
    if self.kind == "bool":
      return "true or false"
    if self.kind == "choice":
      return _either(self.choices)
    if self.kind == "str":
      return "non-empty text" if self.nonempty else "any text"
    if self.kind == "list":
      return self.list_allowed
    text = "integer" if self.kind == "int" else "number"
    if self.low is not None and self.high is not None:
      text += f" in {'(' if self.low_open else '['}{self.low}, {self.high}{')' if self.high_open else ']'}"
    elif self.low is not None:
      text += f" {'>' if self.low_open else '>='} {self.low}"
    elif self.high is not None:
      text += f" {'<' if self.high_open else '<='} {self.high}"
    return text + "".join(f", or {value} (= {meaning})" for value, meaning in self.special)

  def check(self, key: str, value: Any) -> None:
    """Raises a one-line `UserError` naming the key, the value and the allowed values."""
    if self.kind == "choice":
      if value not in self.choices:
        raise UserError(f"{key}={value!r}; choose {self.allowed()}")
    elif self.kind == "list" and isinstance(value, (list, tuple)):
      self.list_check(key, value)
    elif not self._ok(value):
      article = {"int": "an ", "float": "a "}.get(self.kind, "")
      raise UserError(f"{key}={value!r} must be {article}{self.allowed()}")

  def _ok(self, value: Any) -> bool:
    if self.kind == "bool":
      return isinstance(value, bool)
    if self.kind == "str":
      return isinstance(value, str) and bool(value or not self.nonempty)
    if self.kind == "list":
      return isinstance(value, (list, tuple))
    if isinstance(value, bool) or not isinstance(value, int if self.kind == "int" else (int, float)):
      return False
    if any(value == special for special, _ in self.special):
      return True
    if not math.isfinite(value):
      return False
    if self.low is not None and (value <= self.low if self.low_open else value < self.low):
      return False
    return self.high is None or (value < self.high if self.high_open else value <= self.high)


def _either(options) -> str:
  options = [str(o) for o in options]
  return options[0] if len(options) == 1 else f"{', '.join(options[:-1])} or {options[-1]}"


def flag(doc: str) -> Spec:
  return Spec(doc, "bool")


def text(doc: str, *, nonempty: bool = False) -> Spec:
  return Spec(doc, "str", nonempty=nonempty)


def choice(doc: str, *choices: str) -> Spec:
  return Spec(doc, "choice", choices=choices)


def integer(doc: str, low: int | None = None, high: int | None = None, special: dict | None = None) -> Spec:
  """An integer key in [low, high], or one of `special` (value -> its meaning, e.g. {0: "off"})."""
  return Spec(doc, "int", low=low, high=high, special=tuple((special or {}).items()))


def number(
  doc: str, low: float | None = None, high: float | None = None, *, low_open: bool = False, high_open: bool = False
) -> Spec:
  return Spec(doc, "float", low=low, high=high, low_open=low_open, high_open=high_open)


def probability(doc: str) -> Spec:
  return number(doc, 0, 1)


def dropout(doc: str) -> Spec:
  return number(doc, 0, 1, high_open=True)


def _check_rules(key: str, value) -> None:
  del key  # its messages name mesh.rules
  from jaxpretrain.parallel.rules import rules_from_config

  rules_from_config(types.SimpleNamespace(rules=value))


def _check_key_names(key: str, value) -> None:
  if not all(isinstance(name, str) for name in value):
    raise UserError(f"{key}={value!r}: expected a list of dotted config keys")


def _check_processes(key: str, value) -> None:
  if any(isinstance(p, bool) or not isinstance(p, int) or p < 0 for p in value):
    raise UserError(f"{key}={list(value)!r}: expected a list of process indices >= 0, e.g. [0]")


def _check_budgets(key: str, value) -> None:
  budgets = list(value)
  if (
    not budgets
    or any(isinstance(b, bool) or not isinstance(b, int) or b < 2 for b in budgets)
    or budgets != sorted(set(budgets))
  ):
    raise UserError(f"{key}={budgets}: expected increasing label counts >= 2, e.g. [32, 64, 128, 256]")


MESH_SIZE = {-1: "the devices the other axes leave"}
SEED_MAX = 2**31 - 1
# Sections only some configs have: the section's note in the docs.
OPTIONAL_SECTIONS = {
  "demo": "Only in `configs/demo.py` (`jaxpretrain demo`): the fine-tuning grid that follows the demo's "
  "pretraining run, which the other sections describe.",
}

KEYS: dict[str, Spec] = {
  "init_from": text(
    'pretraining workdir (or `hf:DIR` / `hf:HUB_ID`) whose encoder a fine-tune starts from; "" = from scratch'
  ),
  "init_step": integer("checkpoint step of `init_from` to start from", 0, special={-1: "the latest"}),
  "init_weights": flag("`hf:` init_from: false = the HF architecture with fresh random weights"),
  "hf_allow_pickle": flag("`hf:` init_from: accept pickled pytorch_model.bin (`--allow_pickle`)"),
  "overridden_keys": Spec(
    "recorded, not set: the keys given as KEY=VALUE overrides. With `init_from`, such a model.* key must agree "
    "with the source (the other model.* keys are taken from it)",
    "list",
    list_allowed="a list of dotted config keys",
    list_check=_check_key_names,
  ),
  "model.preset": text("informational: the preset (or `hf:` checkpoint) the dims came from"),
  "model.vocab_size": integer("token vocabulary size (embedding rows and MLM output classes)", 1),
  "model.hidden_size": integer("width of the hidden states (BertConfig.hidden_size)", 1),
  "model.num_hidden_layers": integer("Transformer layers", 1),
  "model.num_attention_heads": integer("attention heads per layer (must divide model.hidden_size)", 1),
  "model.intermediate_size": integer("width of the feed-forward layer inside each block", 1),
  "model.max_position_embeddings": integer(
    "learned position embeddings: the longest sequence the model accepts (plus model.position_offset)", 1
  ),
  "model.type_vocab_size": integer("token type (segment A/B) embeddings; 0 = none (GPT-2)", 0),
  "model.hidden_act": choice("feed-forward activation", "gelu", "gelu_new", "relu", "silu"),
  "model.hidden_dropout_prob": dropout("dropout on embeddings and each block's outputs"),
  "model.attention_probs_dropout_prob": dropout("dropout on attention probabilities"),
  "model.layer_norm_eps": number("LayerNorm epsilon", 0, low_open=True),
  "model.initializer_range": number("std of the normal weight initializer", 0, low_open=True),
  "model.pre_layer_norm": flag("false: post-LN as in BERT; true: pre-LN as in GPT-2"),
  "model.causal": flag("true: each position attends to itself and earlier ones (a decoder)"),
  "model.use_pooler": flag("BERT's [CLS] dense+tanh pooler"),
  "model.dtype": choice("compute dtype; parameters stay float32", "float32", "bfloat16", "float16"),
  "model.attention": choice(
    "attention implementation (`jax.nn.dot_product_attention`); auto = cuDNN where it runs, else XLA",
    "xla",
    "cudnn",
    "auto",
  ),
  "model.remat": choice(
    "rematerialization: none, only matmul outputs saved (dots), or the whole layer recomputed (full)",
    "none",
    "dots",
    "full",
  ),
  "model.scan_layers": flag("scan over layers: one layer compiled once"),
  "model.packed_positions": choice(
    "positions in packed rows (segment_ids 1, 2, ...): restart = each "
    "document's positions count from 0, so a packed batch computes exactly "
    "what its documents would unpacked; continue = 0..seq_len-1",
    "restart",
    "continue",
  ),
  "model.position_offset": integer(
    "first position index (RoBERTa: 2 = padding_idx + 1); pads take "
    "position offset - 1; below model.max_position_embeddings",
    0,
  ),
  "model.family": Spec(
    "the Hugging Face model type the switches below make (models/families.py fixes the switches of each; "
    "a contradicting value is an error); auto = the switches alone, the family inferred for export",
    "choice",
    choices=families.CHOICES,
  ),
  "model.position_embedding_type": choice(
    "absolute = learned position table; rotary = RoPE on queries and keys (HF rotate_half layout)",
    "absolute",
    "rotary",
  ),
  "model.rope_theta": number("rotary base of global (full-attention) layers", 0, low_open=True),
  "model.local_rope_theta": number("rotary base of sliding-window layers (ModernBERT: 10000)", 0, low_open=True),
  "model.norm_type": choice("every norm of the model: LayerNorm or RMSNorm", "layer_norm", "rms_norm"),
  "model.norm_bias": flag("LayerNorms have a bias (false for RMSNorm)"),
  "model.use_bias": flag("the attention and MLP linears and the heads' transform have biases"),
  "model.gated_mlp": flag("gated MLP output(act(gate(x)) * intermediate(x)): GeGLU with gelu, SwiGLU with silu"),
  "model.pre_ln_embedding_norm": flag(
    "pre-LN models: normalize the embeddings too; layer 0 then has no attention norm (ModernBERT)"
  ),
  "model.num_key_value_heads": integer(
    "key/value heads (grouped-query attention; 1 = multi-query); must divide model.num_attention_heads",
    1,
    special={0: "model.num_attention_heads"},
  ),
  "model.sliding_window": integer(
    "local layers attend to keys within this distance (|q - k| <= window; causal: the window before); "
    "ModernBERT: 64 (its local_attention 128 / 2); below model.max_position_embeddings",
    1,
    special={0: "every layer global"},
  ),
  "model.global_attn_every_n_layers": integer(
    "with model.sliding_window: layer i attends globally iff i % n == 0 (ModernBERT: 3)", 1
  ),
  "model.tie_word_embeddings": flag("the LM / MLM output projection is the token embedding matrix (false: its own)"),
  "model.classifier_transform": flag(
    "classification, token classification and QA heads: dense + activation + norm before the classifier "
    "(ModernBERT's prediction head)"
  ),
  "data.train": text(
    "training data: `embedded`, a file path, a glob, `tfds:NAME/CONFIG:split`, or a Hugging Face dataset "
    "`hf:NAME/CONFIG:split` or `hf:DIR[:split]` (docs/data.md); or a weighted mixture "
    "`SPEC@WEIGHT,SPEC@WEIGHT,...` (e.g. `embedded@0.7,books.txt@0.3`; positive weights, normalized to sum 1: "
    "each batch holds that share of rows of each source)",
    nonempty=True,
  ),
  "data.eval": text(
    'held-out data; "" = the held-out slice of data.train (a tfds: or hf: dataset: its validation, else test, split)'
  ),
  "data.seq_len": integer(
    "tokens per row (packed rows for pretraining); at most model.max_position_embeddings - model.position_offset", 8
  ),
  "data.tokenizer": text(
    'HF tokenizer directory (`DIR` or `hf:DIR`: any directory `AutoTokenizer` loads); "" = train one on the '
    "corpus (data.tokenizer_type)"
  ),
  "data.tokenizer_type": choice(
    "the tokenizer trained when data.tokenizer is empty: wordpiece (lowercasing, BERT's), bpe (byte-level, "
    "GPT-2's: <|endoftext|> is bos, eos and pad) or unigram (SentencePiece-like, with [MASK] for MLM); "
    "auto = wordpiece for encoder tasks, bpe for causal_lm and translation",
    "auto",
    "wordpiece",
    "bpe",
    "unigram",
  ),
  "data.prepared_dir": text('where `prepare` writes; "" = WORKDIR/data'),
  "data.eval_fraction": number(
    "share of documents (or labeled records of a file) held out for evaluation", 0, 1, high_open=True
  ),
  "data.embedded_documents": integer("size of the embedded corpus (documents)", 1),
  "data.records_per_shard": integer("`prepare`: records per ArrayRecord shard file", 1),
  "data.prefetch": integer(
    "batches prefetched to the devices in a background thread", 1, special={0: "synchronous, no thread"}
  ),
  "data.packing": choice(
    "rows as [CLS] a [SEP] b [SEP] (bert, MLM) or [BOS] a [EOS][BOS] b [EOS] (gpt, causal "
    "LM); auto = gpt for task.name=causal_lm, else bert",
    "auto",
    "bert",
    "gpt",
  ),
  "data.train_examples": integer(
    "fine-tuning: labeled training examples: the embedded task's label budget "
    "(0 = 1000); for files and tfds a cap (0 = all)",
    0,
  ),
  "data.eval_examples": integer("fine-tuning: evaluation examples (0 = all; embedded test split: 2000)", 0),
  "data.doc_stride": integer("QA: tokens shared by consecutive windows of a long context", 0),
  "data.length_buckets": integer(
    "fine-tuning: each batch is padded only to the shortest of at most this many lengths that holds its longest "
    "row (multiples of 8 chosen from the data to waste the fewest padded tokens; the step compiles once per "
    "length, listed in a note); the results are those of full-length batches up to float rounding",
    1,
    special={0: "off: every batch padded to data.seq_len"},
  ),
  "data.length_grouping": integer(
    "fine-tuning: training rows are sorted by length within windows of this many shuffled batches, so a batch "
    "holds rows of similar length (HF `group_by_length`); every epoch still sees each example once, the last "
    "batch of an epoch filled with weight-0 rows",
    1,
    special={0: "off: batches of the shuffled order"},
  ),
  "data.source_field": text(
    'translation: the .jsonl / tfds record field holding the source text; "" = '
    "`source`, or a tfds dataset's first supervised key"
  ),
  "data.target_field": text(
    'translation: the record field holding the target text; "" = `target`, or a tfds dataset\'s second supervised key'
  ),
  "data.text_column": text(
    "the column (field, feature) holding the text of hf: datasets, .jsonl/.csv/.tsv rows and tfds records "
    '(token classification: the words); "" = guessed: text, sentence, content, document, article, ..., '
    "a pair's sentence1/sentence2, question1/question2, premise/hypothesis, question/sentence"
  ),
  "data.text_pair_column": text(
    'fine-tuning: the column holding the second text of a pair (needs data.text_column); "" = guessed with it'
  ),
  "data.label_column": text(
    'fine-tuning: the column holding the label (token classification: the tags); "" = `label` (tags: ner_tags, tags)'
  ),
  "task.name": choice(
    "the objective: MLM or causal-LM pretraining, or a fine-tuning task (regression: one score per "
    "text or pair, as STS-B; translation: a decoder fine-tuned on `source <sep> target`)",
    "mlm",
    "causal_lm",
    "classification",
    "regression",
    "token_classification",
    "qa",
    "translation",
  ),
  "task.mask_prob": number("mlm: share of tokens selected for prediction", 0, 1, low_open=True),
  "task.mask_token_prob": probability("mlm: share of selected tokens replaced by [MASK]"),
  "task.random_token_prob": probability(
    "mlm: share of selected tokens replaced by a random token (the rest stay); at most 1 - task.mask_token_prob"
  ),
  "task.head_positions": choice(
    "mlm: masked = head on the selected tokens only; all = every position", "masked", "all"
  ),
  "task.max_predictions": integer(
    "mlm, masked head: scored tokens per row at most (BERT's max_predictions_per_seq)",
    1,
    special={0: "5 std above the expected count"},
  ),
  "task.num_labels": integer(
    "classification / token classification: label count", 2, special={0: "inferred from the training data"}
  ),
  "task.pooling": choice("classification heads: the [CLS] pooler or the mean over tokens", "cls", "mean"),
  "task.classifier_dropout": dropout("dropout before the classification head"),
  "task.max_answer_length": integer("QA post-processing: longest answer in tokens", 1),
  "task.n_best": integer("QA post-processing: start/end candidates per window", 1),
  "train.steps": integer(
    "optimizer steps (ignored when train.num_epochs > 0); 0 = no update: the initial (or warm-started) state is saved",
    0,
  ),
  "train.num_epochs": number("> 0: overrides train.steps with epochs over the training data; 0 = use train.steps", 0),
  "train.batch_size": integer("global batch size (divisible by the data-parallel size)", 1),
  "train.seed": integer("seed of parameter init, data order, masking and dropout", 0, SEED_MAX),
  "train.learning_rate": number("peak learning rate (reached at the end of warmup)", 0, low_open=True),
  "train.warmup_steps": integer("linear warmup steps from 0 to the peak learning rate", 0),
  "train.warmup_ratio": number(
    "> 0: warmup for ceil(ratio x the run's steps) instead of train.warmup_steps (HF TrainingArguments.warmup_ratio); "
    "0 = use train.warmup_steps",
    0,
    1,
    high_open=True,
  ),
  "train.schedule": choice(
    "learning rate after warmup: linear or cosine decay to 0, or constant", "linear", "cosine", "constant"
  ),
  "train.weight_decay": number("AdamW decoupled weight decay (not applied to biases and LayerNorm)", 0),
  "train.adam_b1": number("Adam beta1", 0, 1, high_open=True),
  "train.adam_b2": number("Adam beta2", 0, 1, high_open=True),
  "train.adam_eps": number("Adam epsilon", 0, low_open=True),
  "train.max_grad_norm": number("global-norm gradient clipping; 0 = off", 0),
  "train.grad_accum_steps": integer("micro-batches accumulated per optimizer step (must divide train.batch_size)", 1),
  "train.log_every": integer("steps between metrics.jsonl training rows", 1),
  "train.on_nonfinite": choice(
    "a non-finite loss or gradient: raise = stop with an error; skip = skip that update", "raise", "skip"
  ),
  "train.max_consecutive_skips": integer(
    "train.on_nonfinite=skip: stop with an error after this many skipped steps in a row (the latest checkpoint stays)",
    1,
  ),
  "train.allow_data_change": flag(
    "resume although data.train, the tokenizer, data.seq_len, the packing, a fine-tune's data.length_grouping or "
    "train.batch_size differ from the checkpoint's (a deliberate continuation; false = such a resume is an error)"
  ),
  "train.progress": flag("progress bar on stderr"),
  "train.peak_tflops": number(
    "one device's peak TFLOP/s, the denominator of the `mfu` in metrics rows and `bench`; 0 = the datasheet figure "
    "of a known accelerator for model.dtype, else (CPU, unknown devices) a measured matmul ceiling, cached in "
    "~/.cache/jaxpretrain/peak_flops.json (see docs/observability.md)",
    0,
  ),
  "train.compilation_cache_dir": text(
    "JAX's persistent compilation cache: a re-run or resume of the same config loads the compiled steps instead "
    "of compiling them; auto = $JAXPRETRAIN_CACHE/xla (default ~/.cache/jaxpretrain/xla, or "
    "$JAX_COMPILATION_CACHE_DIR when set; a warning and no cache where it cannot be written); a directory "
    '(local or gs://) that cannot be one is an error; "" = off'
  ),
  "eval.every_steps": integer("steps between evaluations", 1, special={0: "only at the end"}),
  "eval.batches": integer("evaluation batches per evaluation (pretraining)", 1, special={0: "no evaluation"}),
  "eval.batch_size": integer("evaluation batch size", 1, special={0: "train.batch_size"}),
  "eval.metric": text("eval metric that picks the best checkpoint (e.g. loss, accuracy)"),
  "eval.metric_mode": choice("whether a lower (min) or higher (max) eval.metric is better", "min", "max"),
  "checkpoint.every_steps": integer(
    "steps between checkpoints (the final step is always saved)", 1, special={0: "only the final step"}
  ),
  "checkpoint.keep": integer("latest checkpoints kept (plus the best by eval.metric when evaluating periodically)", 1),
  "checkpoint.async_save": flag("write checkpoints in the background while training continues"),
  "profile.start_step": integer("first training step traced (numbered as in metrics.jsonl)", 1),
  "profile.num_steps": integer(
    "training steps traced with `jax.profiler` into WORKDIR/profile (TensorBoard's profile plugin, XProf, Perfetto)",
    1,
    special={0: "off"},
  ),
  "profile.processes": Spec(
    "the process indices (`jax.process_index()`) that trace; the others train untraced",
    "list",
    list_allowed="a list of process indices >= 0",
    list_check=_check_processes,
  ),
  "tracking.wandb": flag(
    'log the metrics.jsonl rows and the resolved config to Weights & Biases (`pip install "jaxpretrain[wandb]"`); '
    "process 0 only; a resume continues the W&B run named in WORKDIR/wandb_run_id"
  ),
  "tracking.project": text('W&B project; "" = W&B\'s default (`$WANDB_PROJECT`, else uncategorized)'),
  "tracking.entity": text('W&B user or team; "" = W&B\'s default'),
  "tracking.name": text('W&B run display name; "" = W&B\'s generated name'),
  "mesh.strategy": choice("jit: a (data, fsdp, tensor) device mesh; pmap: classic data parallelism", "jit", "pmap"),
  "mesh.data": integer("devices that split the batch (data parallelism)", 1, special=MESH_SIZE),
  "mesh.fsdp": integer("devices that shard parameters and optimizer state (FSDP / ZeRO-3)", 1, special=MESH_SIZE),
  "mesh.tensor": integer(
    "devices that split attention heads and MLP columns (tensor parallelism)", 1, special=MESH_SIZE
  ),
  "mesh.rules": Spec(
    "logical axis name -> mesh axes (MaxText style); `act_*` names are activations, the rest parameters",
    "list",
    list_allowed="a list of [logical_name, mesh_axes]; mesh_axes: None, data, fsdp, tensor or a list of them",
    list_check=_check_rules,
  ),
  "demo.budgets": Spec(
    "labeled training examples per fine-tuning run: N, 2N, 4N, 8N",
    "list",
    list_allowed="an increasing list of integers >= 2",
    list_check=_check_budgets,
  ),
  "demo.seeds": integer("fine-tuning seeds per (method, budget): each fixes the sample, init and batch order", 1),
  "demo.test_examples": integer("the fixed test split every run is scored on (examples)", 1),
  "demo.seq_len": integer(
    "fine-tuning tokens per row; at most model.max_position_embeddings - model.position_offset", 8
  ),
  "demo.steps": integer("fine-tuning steps, equal for every budget (one compilation)", 1),
  "demo.batch_size": integer("fine-tuning batch size (divisible by the data-parallel size)", 1),
  "demo.learning_rate": number("fine-tuning peak learning rate", 0, low_open=True),
  "demo.warmup_steps": integer("fine-tuning warmup steps", 0),
  "demo.weight_decay": number("fine-tuning AdamW weight decay", 0),
  "demo.pooling": choice("fine-tuning classification head: [CLS] pooler or mean over tokens", "cls", "mean"),
  "demo.classifier_dropout": dropout("fine-tuning dropout before the classification head"),
  "demo.vsm_dims": integer("LSA dimensions of the VSM baseline", 1),
}


def flatten(config, prefix: str = "") -> dict[str, Any]:
  """Dotted key -> value for every leaf of a config (sections are ConfigDicts or dicts)."""
  out = {}
  for name, value in config.items():
    key = f"{prefix}{name}"
    if isinstance(value, (ml_collections.ConfigDict, dict)):
      out.update(flatten(value, f"{key}."))
    else:
      out[key] = value
  return out


def did_you_mean(key: str, known) -> str:
  """` (did you mean train.steps?)` for the closest of `known` dotted keys, or ""."""
  match = difflib.get_close_matches(key, list(known), n=1)
  return f" (did you mean {match[0]}?)" if match else ""


def validate(config) -> None:
  """Checks every key of a config against `KEYS`, then the rules that tie keys together.

  Needs no data and no devices, and writes nothing: commands call it before any work.

  Args:
    config: a full config (`config.defaults()` plus changes; `demo.*` is optional).

  Raises:
    UserError: one line naming the first bad key, its value and the allowed values.
  """
  values = flatten(config)
  for key, value in values.items():
    if key not in KEYS:
      raise UserError(f"unknown config key: {key}{did_you_mean(key, KEYS)}")
    KEYS[key].check(key, value)
  for key in KEYS:
    section = key.split(".")[0]
    if key not in values and (section not in OPTIONAL_SECTIONS or section in config):
      raise UserError(f"config key {key} is missing (a config starts from config.defaults())")
  _check_together(config)


def _check_together(config) -> None:
  m, d, t, tr = config.model, config.data, config.task, config.train
  if m.position_offset >= m.max_position_embeddings:
    raise UserError(
      f"model.position_offset={m.position_offset} must be in [0, "
      f"model.max_position_embeddings={m.max_position_embeddings})"
    )
  positions = m.max_position_embeddings - m.position_offset
  if d.seq_len > positions:
    raise UserError(
      f"data.seq_len={d.seq_len} exceeds the model's {positions} positions "
      f"(model.max_position_embeddings - model.position_offset)"
    )
  if m.hidden_size % m.num_attention_heads:
    raise UserError(
      f"model.hidden_size={m.hidden_size} is not divisible by model.num_attention_heads={m.num_attention_heads}"
    )
  if tr.batch_size % tr.grad_accum_steps:
    raise UserError(
      f"train.batch_size={tr.batch_size} is not divisible by train.grad_accum_steps={tr.grad_accum_steps}"
    )
  if t.mask_token_prob + t.random_token_prob > 1:
    raise UserError(
      f"task.mask_token_prob={t.mask_token_prob} + task.random_token_prob={t.random_token_prob} must be at most 1"
    )
  sizes = [config.mesh.data, config.mesh.fsdp, config.mesh.tensor]
  if sizes.count(-1) > 1:
    raise UserError(f"mesh: at most one of data/fsdp/tensor may be -1, got {sizes}")
  if "demo" in config and config.demo.seq_len > positions:
    raise UserError(
      f"demo.seq_len={config.demo.seq_len} exceeds the model's {positions} positions "
      f"(model.max_position_embeddings - model.position_offset)"
    )
