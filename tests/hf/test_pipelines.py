"""Every export runs in `transformers.pipeline` for its task, on inputs far longer than the model.

Tiny runs of each exported task (pretraining, or a warm-started fine-tune) are exported and loaded
with `pipeline(TASK, model=DIR, tokenizer=DIR)`. transformers truncates only where asked, except in
token-classification: its default call is tested; for the others the minimal argument that makes
a long input fit (`truncation=True`, `tokenizer_kwargs={"truncation": True}`,
`handle_long_generation="hole"`) is tested, and the default call is pinned to fail as transformers
makes it. transformers 5 has no question-answering pipeline: a QA export is run the way that
pipeline ran it (windows of `model_max_length` tokens over the context).
"""

import json
import os

import numpy as np
import pytest
import torch
import transformers

from jaxpretrain import config as config_lib
from jaxpretrain.data.tokenizer import Tokenizer
from jaxpretrain.hf import exporter
from jaxpretrain.train import loop
from tests.decoder.conftest import gpt_run  # noqa: F401 (a session fixture shared with tests/decoder)
from tests.decoder.helpers import TINY_GPT
from tests.finetune.conftest import pretrained  # noqa: F401 (the fine-tuning tests' MLM run)
from tests.finetune.helpers import finetune_config, tiny_config
from tests.hf import helpers

pytestmark = pytest.mark.xdist_group("pipelines")  # one worker builds the runs once

LONG = " ".join(["the soup was green and the cat sat on the mat."] * 200)  # ~2400 tokens
TAGS = ["O", "B-FOOD", "I-FOOD"]


def _jsonl(path, rows):
  with open(path, "w") as f:
    f.write("".join(json.dumps(r) + "\n" for r in rows))
  return str(path)


def _ner_rows(n):
  words = "the green soup and the hot tea were on the table".split()
  tags = ["O", "B-FOOD", "I-FOOD", "O", "O", "B-FOOD", "I-FOOD", "O", "O", "O", "O"]
  return [{"tokens": words, "ner_tags": tags}] * n


def _squad_rows(n):
  rows = []
  for i in range(n):
    name = ["kiwi", "plum", "fig", "lime"][i % 4]
    context = f"the farmer grows {name} trees near the river"
    rows.append(
      {
        "id": str(i),
        "question": "what does the farmer grow",
        "context": context,
        "answers": {"text": [name], "answer_start": [context.index(name)]},
      }
    )
  return rows


def _fine_tune(tmp_path_factory, source: str, task: str, model: dict) -> str:
  """A 4-step fine-tune of `task` warm-started from the run `source` (whose `model` overrides it
  repeats); its workdir."""
  data = tmp_path_factory.mktemp(f"{task}_data")
  overrides = {"task__name": task, "init_from": source, "train__steps": 4, "checkpoint__every_steps": 4, **model}
  if task == "token_classification":
    path = _jsonl(data / "ner.jsonl", _ner_rows(24))
    overrides.update(data__train=path, data__eval=path)
  elif task == "qa":
    path = _jsonl(data / "squad.jsonl", _squad_rows(24))
    overrides.update(data__train=path, data__eval=path, data__doc_stride=8)
  elif task == "translation":
    overrides.update(data__train="embedded", data__train_examples=32, data__eval_examples=8)
  workdir = str(tmp_path_factory.mktemp(task) / "run")
  loop.run(finetune_config(**overrides), workdir)
  return workdir


# The RoBERTa run numbers real tokens from padding_idx + 1 = 1 (its tokenizer pads with id 0).
ROBERTA = {"model__position_offset": 1, "model__max_position_embeddings": 48}
# What a fine-tune of each source run sets besides the architecture it adopts (GPT-2 has no pooler).
SOURCE_MODEL = {"pretrained": {}, "roberta_run": ROBERTA, "gpt_run": {"model__use_pooler": False}}


@pytest.fixture(scope="module")
def roberta_run(tmp_path_factory, tiny_prepared):
  """A 4-step MLM run of the `pretrained` fixture's model as RoBERTa: 48 positions, 47 inputs."""
  workdir = str(tmp_path_factory.mktemp("roberta") / "run")
  loop.run(tiny_config(data__prepared_dir=tiny_prepared, **ROBERTA), workdir)
  return workdir


# case id -> (the fixture of the run it starts from, the task it fine-tunes (None: the run itself),
# the architecture, the tokenizer's model_max_length)
CASES = {
  "bert-mlm": ("pretrained", None, "BertForMaskedLM", 64),
  "roberta-mlm": ("roberta_run", None, "RobertaForMaskedLM", 47),
  "bert-classification": ("pretrained", "classification", "BertForSequenceClassification", 64),
  "roberta-classification": ("roberta_run", "classification", "RobertaForSequenceClassification", 47),
  "bert-token_classification": ("pretrained", "token_classification", "BertForTokenClassification", 64),
  "gpt2-token_classification": ("gpt_run", "token_classification", "GPT2ForTokenClassification", 64),
  "bert-qa": ("pretrained", "qa", "BertForQuestionAnswering", 64),
  "gpt2-causal_lm": ("gpt_run", None, "GPT2LMHeadModel", 64),
  "gpt2-translation": ("gpt_run", "translation", "GPT2LMHeadModel", 64),
}


@pytest.fixture(scope="module")
def built():
  """case id -> (run workdir, HF directory): each case is run and exported once per module (a
  module-scoped parametrized fixture would be rebuilt whenever the test order changes case)."""
  return {}


@pytest.fixture()
def exported(request, tmp_path_factory, built):
  """(run workdir, HF directory, expected model_max_length) of the case `request.param`."""
  source_fixture, task, arch, max_length = CASES[request.param]
  if request.param not in built:
    source = request.getfixturevalue(source_fixture)
    source = source[0] if source_fixture == "gpt_run" else source
    workdir = _fine_tune(tmp_path_factory, source, task, SOURCE_MODEL[source_fixture]) if task else source
    out = str(tmp_path_factory.mktemp("hf") / request.param)
    assert exporter.export_run(workdir, out)["architecture"] == arch
    built[request.param] = workdir, out
  return (*built[request.param], max_length)


def _pipeline(task, directory):
  helpers.quiet_transformers()
  return transformers.pipeline(task, model=directory, tokenizer=directory)


def _cases(*ids):
  """Runs the test on the exports of cases `ids` (end to end: slow)."""

  def mark(test):
    return pytest.mark.slow(pytest.mark.parametrize("exported", ids, indirect=True)(test))

  return mark


def _input_length(config) -> int:
  """The positions an HF config gives real tokens (RoBERTa numbers them from padding_idx + 1)."""
  if config.model_type == "gpt2":
    return config.n_positions
  return config.max_position_embeddings - (config.pad_token_id + 1 if config.model_type == "roberta" else 0)


@_cases(*CASES)
def test_tokenizer_max_length_is_the_models_input_length(exported):
  workdir, out, expected = exported
  tokenizer = transformers.AutoTokenizer.from_pretrained(out)
  assert tokenizer.model_max_length == _input_length(transformers.AutoConfig.from_pretrained(out)) == expected
  ids = tokenizer(LONG, truncation=True)["input_ids"]
  assert len(ids) == tokenizer.model_max_length
  # The run's own tokenizer is left as it was.
  assert Tokenizer.load(os.path.join(workdir, "tokenizer")).hf.model_max_length == 512


@_cases("bert-mlm", "roberta-mlm")
def test_fill_mask_returns_the_top_five_tokens(exported):
  _, out, _ = exported
  fill = _pipeline("fill-mask", out)
  text = f"the soup {fill.tokenizer.mask_token} green " + LONG
  with pytest.raises((RuntimeError, IndexError)):  # transformers truncates only if asked: past the positions
    fill(text)
  results = fill(text, tokenizer_kwargs={"truncation": True})
  assert len(results) == 5
  assert all(r["sequence"].startswith("the soup") and fill.tokenizer.mask_token not in r["sequence"] for r in results)
  scores = [r["score"] for r in results]
  assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1 + 1e-6
  # The same top 5 as the model's own logits at the mask of the truncated input.
  inputs = fill.tokenizer(text, truncation=True, return_tensors="pt")
  with torch.no_grad():
    logits = fill.model(**inputs).logits[0]
  position = int((inputs["input_ids"][0] == fill.tokenizer.mask_token_id).nonzero()[0, 0])
  assert [r["token"] for r in results] == torch.topk(logits[position], 5).indices.tolist()


@_cases("bert-classification", "roberta-classification")
def test_text_classification_labels_a_long_text_with_the_runs_label_names(exported):
  workdir, out, _ = exported
  classify = _pipeline("text-classification", out)
  with pytest.raises((RuntimeError, IndexError)):  # transformers truncates only if asked: past the positions
    classify(LONG)
  (result,) = classify(LONG, truncation=True)
  with open(os.path.join(workdir, "data_info.json")) as f:
    names = json.load(f)["label_names"]
  assert names == ["negative", "positive"] and result["label"] in names and 0.5 <= result["score"] <= 1
  inputs = classify.tokenizer(LONG, truncation=True, return_tensors="pt")
  with torch.no_grad():
    probs = classify.model(**inputs).logits[0].softmax(-1)
  assert result["label"] == names[int(probs.argmax())] and result["score"] == pytest.approx(float(probs.max()))


@_cases("bert-token_classification", "gpt2-token_classification")
def test_token_classification_tags_a_long_text_by_default(exported):
  _, out, _ = exported
  tag = _pipeline("token-classification", out)
  entities = tag(LONG)  # the pipeline truncates at model_max_length by default
  assert all(e["entity"] in TAGS[1:] for e in entities)
  every = tag(LONG, ignore_labels=[])
  # One tag per token of the first window: model_max_length less [CLS] and [SEP].
  assert len(every) == tag.tokenizer.model_max_length - 2
  assert all(e["entity"] in TAGS for e in every) and [e["index"] for e in every] == list(range(1, len(every) + 1))
  assert LONG[every[-1]["start"] : every[-1]["end"]] == every[-1]["word"].removeprefix("##")
  # The same tags as the model gives the truncated input (GPT-2 without token types: ours has none).
  inputs = tag.tokenizer(LONG, truncation=True, return_tensors="pt")
  assert "token_type_ids" not in inputs or tag.model.config.model_type == "bert"
  with torch.no_grad():
    predicted = tag.model(**inputs).logits[0, 1 : len(every) + 1].argmax(-1).tolist()
  assert [e["entity"] for e in every] == [TAGS[i] for i in predicted]


@_cases("bert-qa")
def test_question_answering_finds_a_span_in_a_long_context(exported):
  _, out, _ = exported
  # transformers 5 dropped the question-answering pipeline; this is what it did: windows of
  # model_max_length tokens over the context, the best span of any window.
  tokenizer = transformers.AutoTokenizer.from_pretrained(out)
  model = transformers.AutoModelForQuestionAnswering.from_pretrained(out).eval()
  question = "what does the farmer grow"
  context = "the farmer grows kiwi trees near the river. " + LONG
  windows = tokenizer(
    question,
    context,
    truncation="only_second",
    stride=8,
    return_overflowing_tokens=True,
    return_offsets_mapping=True,
    padding=True,
    return_tensors="pt",
  )
  assert windows["input_ids"].shape[1] == tokenizer.model_max_length and windows["input_ids"].shape[0] > 10
  offsets = windows.pop("offset_mapping")
  last_window = np.array(windows.sequence_ids(windows["input_ids"].shape[0] - 1)) == 1
  assert int(offsets[-1][last_window, 1].max()) == len(context)  # the windows reach the context's end
  windows.pop("overflow_to_sample_mapping")
  with torch.no_grad():
    out_ = model(**windows)
  best = None
  for w in range(windows["input_ids"].shape[0]):
    in_context = np.array(windows.sequence_ids(w)) == 1
    start = np.where(in_context, out_.start_logits[w].numpy(), -np.inf)
    end = np.where(in_context, out_.end_logits[w].numpy(), -np.inf)
    scores = start[:, None] + end[None, :]
    scores[np.tril_indices(len(start), -1)] = -np.inf  # end before start
    s, e = np.unravel_index(np.argmax(scores), scores.shape)
    if best is None or scores[s, e] > best[0]:
      best = scores[s, e], int(offsets[w, s, 0]), int(offsets[w, e, 1])
  _, first, last = best
  assert 0 <= first < last <= len(context) and context[first:last].strip()


@_cases("gpt2-causal_lm", "gpt2-translation")
def test_text_generation_appends_generated_tokens(exported):
  workdir, out, _ = exported
  generate = _pipeline("text-generation", out)
  tokenizer = Tokenizer.load(os.path.join(workdir, "tokenizer"))
  bos, eos = tokenizer.special_ids["cls"], tokenizer.special_ids["sep"]
  config = generate.model.config
  generation = generate.model.generation_config
  assert (config.bos_token_id, config.eos_token_id, config.pad_token_id) == (bos, eos, tokenizer.special_ids["pad"])
  assert (generation.bos_token_id, generation.eos_token_id, generation.pad_token_id) == (bos, eos, config.pad_token_id)
  positions = config.n_positions
  assert generation.max_new_tokens == positions // 4
  # A prompt reads as `jaxpretrain generate` reads it: [BOS] text (translation: [BOS] source [SEP]).
  prompt = "the soup was"
  source_prompt = config_lib.load_saved(workdir).task.name == "translation"
  expected = [bos, *tokenizer.encode_batch([prompt])[0], *([eos] if source_prompt else [])]
  assert generate.tokenizer(prompt)["input_ids"] == expected

  torch.manual_seed(0)
  (result,) = generate(prompt)
  assert result["generated_text"].startswith(prompt) and len(result["generated_text"]) > len(prompt)
  torch.manual_seed(0)
  (result,) = generate(prompt, return_tensors=True)
  tokens = result["generated_token_ids"]
  assert tokens[: len(expected)] == expected and 1 <= len(tokens) - len(expected) <= generation.max_new_tokens

  with pytest.raises(IndexError):  # transformers truncates a prompt only if asked
    generate(LONG)
  torch.manual_seed(0)
  (result,) = generate(LONG, handle_long_generation="hole", return_tensors=True)
  tokens = result["generated_token_ids"]
  kept = positions - generation.max_new_tokens  # the prompt's last tokens, room left for the new ones
  encoded = generate.tokenizer(LONG)["input_ids"]
  assert tokens[:kept] == encoded[-kept:] and kept < len(tokens) <= positions
  torch.manual_seed(0)
  (result,) = generate(LONG, handle_long_generation="hole")
  assert result["generated_text"].startswith(LONG) and len(result["generated_text"]) > len(LONG)


def _byte_level_tokenizer() -> Tokenizer:
  """A GPT-2-style byte-level BPE tokenizer: <|endoftext|> only, a ByteLevel post-processor that
  trims the spaces byte-level tokens start with off their offsets."""
  from tokenizers import Tokenizer as RustTokenizer
  from tokenizers import decoders, models, pre_tokenizers, processors, trainers

  rust = RustTokenizer(models.BPE())
  rust.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  rust.decoder = decoders.ByteLevel()
  rust.post_processor = processors.ByteLevel(trim_offsets=True)
  trainer = trainers.BpeTrainer(
    vocab_size=300, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
  )
  rust.train_from_iterator(["the soup was green and the cat sat on the mat"] * 10, trainer)
  return Tokenizer(
    transformers.PreTrainedTokenizerFast(
      tokenizer_object=rust, bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>"
    )
  )


@pytest.mark.parametrize("task", ["causal_lm", "translation"])
def test_a_byte_level_tokenizer_reads_prompts_as_generate_does(task):
  tokenizer = _byte_level_tokenizer()
  eos = tokenizer.special_ids["eos"]
  hf = exporter.hf_tokenizer(tokenizer, TINY_GPT, task)
  encoded = hf("the soup", return_offsets_mapping=True)
  words = tokenizer.encode_batch(["the soup"])[0]
  assert encoded["input_ids"] == [eos, *words, *([eos] if task == "translation" else [])]
  assert "token_type_ids" not in encoded and hf.model_max_length == TINY_GPT.max_position_embeddings == 48
  # The byte-level post-processor still trims offsets: " soup" spans "soup", 4..8.
  assert encoded["offset_mapping"][len(words)] == (4, 8)
  assert hf.decode(encoded["input_ids"], skip_special_tokens=True) == "the soup"
  # The run's tokenizer is left as it was.
  assert tokenizer.hf("the soup")["input_ids"] == words and tokenizer.hf.model_max_length != 48
