"""The task table: `task.name` → everything that differs between tasks, in one place.

`TASKS` maps each name to a `TaskSpec`: the `Task` it trains, the data pipeline that feeds it (and,
for fine-tuning on labeled data, the record kind), how its pretraining rows are packed, what
`evaluate` adds to the summed metrics, how `export` writes it as a Hugging Face architecture, and
what `bench` builds and measures. Every other module asks this table (`spec(name)`) instead of
comparing task names, so a new task is one new entry here.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

from jaxpretrain import files, paths
from jaxpretrain.data.finetune import kinds
from jaxpretrain.errors import UserError


@dataclasses.dataclass(frozen=True)
class BenchSpec:
  """What `jaxpretrain bench` and its FLOP count need of a pretraining task.

  Attributes:
    build_task: (config, model_config) -> the Task, without a tokenizer (ids 0-4 are the specials).
    head_transform: the head passes each position through a hidden×hidden transform before the
      tied vocabulary projection (BERT's MLM head), counted by `train/flops.py`.
    hf_family: the HF family `--compare=hf-torch` runs for a model whose switches match no family
      (`model.family=auto`); a model of a family runs as that family's architecture for the task.
    hf_scores_mask_prob: the PyTorch reference scores only `task.mask_prob` of the positions (as
      HF's MLM does) rather than all of them.
  """

  build_task: Callable[[Any, Any], Any]
  hf_family: str
  head_transform: bool = False
  hf_scores_mask_prob: bool = False


@dataclasses.dataclass(frozen=True)
class TaskSpec:
  """One task (see the module doc).

  Attributes:
    name: the `task.name`.
    build_task: (config, model_config, run data) -> the `Task`.
    build_data: (spec, config, workdir, with_train) -> the `RunData`; with_train=False may skip
      the training data (for `evaluate`).
    decoder: the task needs `model.causal=true` (a bidirectional model sees the token it predicts).
    packing: the rows `data.packing=auto` stands for when pretraining data is prepared ("bert":
      `[CLS] a [SEP] b [SEP]`, "gpt": `[BOS] doc [EOS]`; see `data/pretrain/packing.py`).
    tokenizer: the tokenizer `data.tokenizer_type=auto` trains when there is none to load (a key of
      `data/tokenizer.py` `TRAINERS`): "wordpiece" for encoders, byte-level "bpe" for decoders.
    labeled: the record kind of a fine-tuning task on labeled data (`data/finetune/kinds.py`).
    eval_scores: (config, task, state, strategy, tokenizer) -> metrics `evaluate` adds to the
      summed eval metrics (QA's EM/F1, translation's BLEU), or None.
    source_prompts: a `generate` prompt is a source: the decoder reads `[BOS] prompt [SEP]`.
    hf_architectures: {HF family: the HF class an export writes (and an import recognizes)}.
    hf_import_only: {HF class: family} of further architectures whose head serves this task on import.
    hf_head: the head's tensor layout in HF (`hf/mapping.py`): "lm_transform",
      "sequence_classifier", "token_classifier", "span", or None (no parameters of its own).
    hf_pooler: the head reads the pooled [CLS] (BERT's pooler; RoBERTa's classifier dense layer).
    exports_as: the task whose HF architecture an export writes ("" = this one).
    hf_problem_type: the `problem_type` an export's HF config says ("" = none; "regression": a
      one-output `*ForSequenceClassification` whose pipeline applies no sigmoid).
    bench: what `bench` needs; None = bench does not measure this task.
    metrics: the names of the eval metrics its `Task.metrics` reports (the rows `loop.evaluate_batches`
      writes and the checkpointer's keep-best reads): what `eval.metric` may name.
    unigram_baseline: its `accuracy` scores masked real tokens only, so always predicting the most
      frequent token is a meaningful baseline for it (MLM; a causal LM also scores EOS).
    needs_mask_token: its inputs hide tokens behind [MASK] (MLM).
  """

  name: str
  build_task: Callable[[Any, Any, Any], Any]
  build_data: Callable[..., Any]
  decoder: bool = False
  packing: str = "bert"
  tokenizer: str = "wordpiece"
  labeled: kinds.LabeledKind | None = None
  eval_scores: Callable[..., dict] | None = None
  source_prompts: bool = False
  hf_architectures: dict[str, str] = dataclasses.field(default_factory=dict)
  hf_import_only: dict[str, str] = dataclasses.field(default_factory=dict)
  hf_head: str | None = None
  hf_pooler: bool = False
  exports_as: str = ""
  hf_problem_type: str = ""
  bench: BenchSpec | None = None
  metrics: tuple[str, ...] = ("loss",)
  unigram_baseline: bool = False
  needs_mask_token: bool = False

  @property
  def export_task(self) -> str:
    """The task whose HF architecture and head an export writes."""
    return self.exports_as or self.name


# --- data --------------------------------------------------------------------------------------


def _pretraining_data(s: TaskSpec, config, workdir: str, with_train: bool):
  del with_train  # evaluation reads the prepared eval split the same way
  from jaxpretrain.data.pretrain.pipeline import build_pretraining

  return build_pretraining(config, workdir, s.packing, tokenizer_type(config))


def _labeled_data(s: TaskSpec, config, workdir: str, with_train: bool):
  from jaxpretrain.checkpoint.init_from import tokenizer_dir
  from jaxpretrain.data.finetune.labeled import build_labeled

  return build_labeled(
    config,
    workdir,
    s.labeled,
    init_tokenizer_dir=tokenizer_dir,
    with_train=with_train,
    tokenizer_type=tokenizer_type(config),
  )


def _translation_data(s: TaskSpec, config, workdir: str, with_train: bool):
  del s
  from jaxpretrain.checkpoint.init_from import tokenizer_dir
  from jaxpretrain.data.finetune.translation import build_translation

  return build_translation(
    config, workdir, init_tokenizer_dir=tokenizer_dir, with_train=with_train, tokenizer_type=tokenizer_type(config)
  )


# --- tasks -------------------------------------------------------------------------------------


def _mlm(config, model_config, data):
  from jaxpretrain.tasks.mlm import MaskedLM

  special = data.info.get("special_ids", {})
  if special.get("mask") is None:
    raise UserError("task.name=mlm needs a tokenizer with a [MASK] token")
  t = config.task
  return MaskedLM(
    model_config,
    special_ids=tuple(sorted(v for v in data.tokenizer.all_special_ids)),
    mask_id=special["mask"],
    random_vocab_size=data.tokenizer.vocab_size,
    mask_prob=t.mask_prob,
    mask_token_prob=t.mask_token_prob,
    random_token_prob=t.random_token_prob,
    head_positions=t.head_positions,
    max_predictions_per_seq=t.max_predictions,
  )


def _bench_mlm(config, model_config):
  from jaxpretrain.tasks.mlm import MaskedLM

  t = config.task
  return MaskedLM(
    model_config,
    mask_prob=t.mask_prob,
    mask_token_prob=t.mask_token_prob,
    random_token_prob=t.random_token_prob,
    head_positions=t.head_positions,
    max_predictions_per_seq=t.max_predictions,
  )


def _causal_lm(config, model_config, data=None):
  del config, data
  from jaxpretrain.tasks.causal_lm import CausalLM

  return CausalLM(model_config)


def _translation(config, model_config, data):
  del config, data
  from jaxpretrain.tasks.translation import Translation

  return Translation(model_config)


def _label_names(data) -> tuple:
  """The label vocabulary of labeled data (`info["label_names"]` from `data/finetune/labeled.py`)."""
  return tuple(data.info.get("label_names", ()))


def _classification(config, model_config, data):
  from jaxpretrain.tasks.classification import SequenceClassification

  t = config.task
  if t.pooling not in ("cls", "mean"):
    raise UserError(f"task.pooling={t.pooling!r}; choose cls or mean")
  num_labels = len(_label_names(data))
  if config.eval.metric == "f1" and num_labels != 2:
    raise UserError(
      f"eval.metric=f1 is the F1 of class 1 of a two-class task; this data has {num_labels} classes: use macro_f1"
    )
  return SequenceClassification(model_config, num_labels=num_labels, pooling=t.pooling, dropout=t.classifier_dropout)


def _regression(config, model_config, data):
  del data  # scores have no label vocabulary
  from jaxpretrain.tasks.regression import SequenceRegression

  t = config.task
  if t.pooling not in ("cls", "mean"):
    raise UserError(f"task.pooling={t.pooling!r}; choose cls or mean")
  return SequenceRegression(model_config, pooling=t.pooling, dropout=t.classifier_dropout)


def _token_classification(config, model_config, data):
  from jaxpretrain.tasks.token_classification import TokenClassification

  return TokenClassification(model_config, label_names=_label_names(data), dropout=config.task.classifier_dropout)


def _qa(config, model_config, data):
  del data
  from jaxpretrain.tasks.qa import QuestionAnswering

  return QuestionAnswering(model_config, max_answer_length=config.task.max_answer_length, n_best=config.task.n_best)


# --- evaluation extras -------------------------------------------------------------------------


def _qa_scores(config, task, state, strategy, tokenizer) -> dict:
  from jaxpretrain.tasks.qa import qa_scores

  return qa_scores(config, task, state.params, strategy, tokenizer, kinds.QA)


def _translation_scores(config, task, state, strategy, tokenizer) -> dict:
  del strategy
  from jaxpretrain.tasks.translation import translation_scores

  return translation_scores(config, state.params, task.model_config, tokenizer)


# --- the table ---------------------------------------------------------------------------------

TASKS: dict[str, TaskSpec] = {
  s.name: s
  for s in (
    TaskSpec(
      "mlm",
      _mlm,
      _pretraining_data,
      packing="bert",
      hf_architectures={
        "bert": "BertForMaskedLM",
        "roberta": "RobertaForMaskedLM",
        "modernbert": "ModernBertForMaskedLM",
      },
      hf_import_only={"BertForPreTraining": "bert"},
      hf_head="lm_transform",
      bench=BenchSpec(_bench_mlm, hf_family="bert", head_transform=True, hf_scores_mask_prob=True),
      metrics=("loss", "accuracy"),
      unigram_baseline=True,
      needs_mask_token=True,
    ),
    TaskSpec(
      "causal_lm",
      _causal_lm,
      _pretraining_data,
      decoder=True,
      packing="gpt",
      tokenizer="bpe",
      hf_architectures={"gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM"},
      bench=BenchSpec(_causal_lm, hf_family="gpt2"),
      metrics=("loss", "accuracy", "perplexity"),
    ),
    TaskSpec(
      "classification",
      _classification,
      _labeled_data,
      labeled=kinds.CLASSIFICATION,
      hf_architectures={
        "bert": "BertForSequenceClassification",
        "roberta": "RobertaForSequenceClassification",
        "modernbert": "ModernBertForSequenceClassification",
      },
      hf_head="sequence_classifier",
      hf_pooler=True,
      metrics=("loss", "accuracy", "macro_f1", "mcc", "f1"),  # f1: of class 1, with two classes
    ),
    # HF regresses with the classification architecture: *ForSequenceClassification, num_labels=1.
    TaskSpec(
      "regression",
      _regression,
      _labeled_data,
      labeled=kinds.REGRESSION,
      exports_as="classification",
      hf_problem_type="regression",
      metrics=("loss", "pearson"),
    ),
    TaskSpec(
      "token_classification",
      _token_classification,
      _labeled_data,
      labeled=kinds.TOKEN_CLASSIFICATION,
      hf_architectures={
        "bert": "BertForTokenClassification",
        "roberta": "RobertaForTokenClassification",
        "gpt2": "GPT2ForTokenClassification",
        "modernbert": "ModernBertForTokenClassification",
      },
      hf_head="token_classifier",
      metrics=("loss", "accuracy", "precision", "recall", "f1"),
    ),
    TaskSpec(
      "qa",
      _qa,
      _labeled_data,
      labeled=kinds.QA,
      eval_scores=_qa_scores,
      hf_architectures={
        "bert": "BertForQuestionAnswering",
        "roberta": "RobertaForQuestionAnswering",
        "gpt2": "GPT2ForQuestionAnswering",
        "modernbert": "ModernBertForQuestionAnswering",
      },
      hf_head="span",
      metrics=("loss", "span_accuracy"),
    ),
    # A translation run is a causal LM whose loss skipped the source: the same head, GPT2LMHeadModel.
    TaskSpec(
      "translation",
      _translation,
      _translation_data,
      decoder=True,
      tokenizer="bpe",
      eval_scores=_translation_scores,
      source_prompts=True,
      exports_as="causal_lm",
      metrics=("loss", "accuracy", "perplexity"),
    ),
  )
}


def spec(name: str) -> TaskSpec:
  """The `TaskSpec` of task `name`.

  Args:
    name: a `task.name`.

  Returns:
    Its entry of `TASKS`.

  Raises:
    UserError: `name` is not a task; the message lists the valid names.
  """
  if name not in TASKS:
    raise UserError(f"task.name={name!r}; choose one of {', '.join(TASKS)}")
  return TASKS[name]


def check_run(config, workdir: str) -> None:
  """Phase 0 checks that need the task table: `eval.metric` and the paths the user gave.

  Needs no data and writes nothing (`loop.setup` calls it right after validating the config).

  Args:
    config: the run config (`task.name`, `eval.metric`, `data.*`, `init_from`).
    workdir: the run directory (`--workdir`).

  Raises:
    UserError: one line naming the metric the task does not report (and those it does), or the
      path that is the wrong kind of thing (a file for a directory or the reverse) or unwritable.
  """
  check_eval_metric(config)
  s = spec(config.task.name)
  files.check_dir(workdir, "--workdir", writable=True)
  rewritten = ("config.json", "data_info.json", "metrics.jsonl", "tokenizer")  # a linked checkpoints/ is fine
  files.refuse_links([os.path.join(workdir, name) for name in rewritten], "a run's own files")
  for key in ("data.train", "data.eval"):
    path = config.data.train if key == "data.train" else config.data.eval
    if not path or path == "embedded" or path.startswith("tfds:") or not paths.exists(path):
      continue  # the readers name a missing file; globs and the embedded data are no paths
    if s.build_data is not _pretraining_data or not paths.isdir(path):  # a corpus may be a directory
      files.check_file(path, key)
  from jaxpretrain.data.tokenizer import WITHOUT_MASK_TOKEN

  trained = not config.data.tokenizer and not config.init_from
  if s.needs_mask_token and trained and tokenizer_type(config) in WITHOUT_MASK_TOKEN:
    raise UserError(
      f"data.tokenizer_type={tokenizer_type(config)} has no [MASK] token, which task.name={s.name} needs; "
      "use wordpiece or unigram"
    )
  if config.data.prepared_dir:
    prepared = config.data.prepared_dir
    files.check_dir(prepared, "data.prepared_dir", writable=not paths.exists(prepared))
  init_from = config.init_from
  if init_from and paths.exists(init_from.removeprefix("hf:")):
    files.check_dir(init_from.removeprefix("hf:"), "init_from", must_exist=True)


def check_eval_metric(config) -> None:
  """`eval.metric` is one of the metrics the configured task reports at evaluation.

  Args:
    config: the run config (`task.name`, `eval.metric`).

  Raises:
    UserError: one line naming the metric and the ones the task reports.
  """
  s = spec(config.task.name)
  if config.eval.metric not in s.metrics:
    raise UserError(
      f"eval.metric={config.eval.metric!r}: task.name={s.name} reports no such metric; "
      f"choose one of {', '.join(s.metrics)}"
    )


def build_data(config, workdir: str, *, with_train: bool = True):
  """The `RunData` for the configured task.

  Args:
    config: the run config (`task.name`, `data.*`).
    workdir: the run's workdir.
    with_train: False may skip reading the training data (`evaluate`).

  Returns:
    The `RunData`.
  """
  s = spec(config.task.name)
  return s.build_data(s, config, workdir, with_train)


def build_task(config, model_config, data):
  """The Task object for `config.task.name`, wired to the data's tokenizer and labels.

  Args:
    config: the run config (`task.*` keys).
    model_config: the encoder's `ModelConfig`.
    data: the run's `RunData` (tokenizer, `info` with special ids and label names).

  Returns:
    A `Task`.
  """
  s = spec(config.task.name)
  if s.decoder and not model_config.causal:
    # A bidirectional model sees the token it is to predict: the loss would be meaningless.
    raise UserError(f"task.name={s.name} needs a decoder: set model.causal=true")
  return s.build_task(config, model_config, data)


def packing(config) -> str:
  """The rows the run's pretraining data is packed as: `data.packing`, `auto` resolved by the task."""
  from jaxpretrain.data.pretrain.pipeline import packing as resolve

  return resolve(config, spec(config.task.name).packing)


def tokenizer_type(config) -> str:
  """The tokenizer a run trains when it has none to load: `data.tokenizer_type`, `auto` resolved by the task.

  Args:
    config: the run config (`data.tokenizer_type`, `task.name`).

  Returns:
    A key of `data/tokenizer.py` `TRAINERS`: "wordpiece", "bpe" or "unigram".
  """
  value = config.data.get("tokenizer_type", "auto")
  return spec(config.task.name).tokenizer if value == "auto" else value


def bench_names() -> list[str]:
  """The tasks `bench` measures."""
  return [name for name, s in TASKS.items() if s.bench is not None]


def hf_architectures(family: str) -> dict[str, str]:
  """{task name: HF class} an export of a `family` model writes, in table order."""
  return {name: s.hf_architectures[family] for name, s in TASKS.items() if family in s.hf_architectures}


def hf_import_only() -> dict[str, tuple[str, str]]:
  """{HF class: (family, task name)} of the import-only architectures whose head serves a task."""
  return {arch: (family, name) for name, s in TASKS.items() for arch, family in s.hf_import_only.items()}
