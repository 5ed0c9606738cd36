"""`hf:` specs (Hugging Face datasets, made offline): corpora, labeled records, pairs, columns, splits, errors."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from jaxpretrain.data.finetune import kinds
from jaxpretrain.data.readers import hf_datasets as hf_reader
from jaxpretrain.data.readers import labeled, pairs
from jaxpretrain.data.readers import text as sources
from jaxpretrain.data.readers.labeled import Columns
from jaxpretrain.errors import UserError
from tests.data.hf_helpers import GLUE_LABELS, corpus, glue_dict, hf_offline, parquet_dir, save, sentences  # noqa: F401

datasets = pytest.importorskip("datasets")


def _error(fn, *args, **kwargs) -> str:
  with pytest.raises(UserError) as e:
    result = fn(*args, **kwargs)
    list(result) if hasattr(result, "__next__") else result
  message = str(e.value)
  assert "\n" not in message, message
  return message


def _read(spec, split="train", kind=kinds.CLASSIFICATION, **kw):
  return labeled.read_examples(spec, kind, split=split, **kw)


@pytest.fixture
def sst2(tmp_path):
  """An sst2-like saved DatasetDict: train 12, validation 6, test 4 (unlabeled: label -1)."""
  texts = sentences(12)
  return save(glue_dict({"sentence": texts}, {"train": 12, "validation": 6, "test": 4}), tmp_path / "sst2")


# --- specs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
  "spec, expected",
  [
    ("hf:glue", ("glue", None, None)),
    ("hf:glue/sst2", ("glue", "sst2", None)),
    ("hf:glue/sst2:validation", ("glue", "sst2", "validation")),
    ("hf:wikitext/wikitext-103-raw-v1:train", ("wikitext", "wikitext-103-raw-v1", "train")),
    ("hf:HuggingFaceFW/fineweb/sample-10BT:train", ("HuggingFaceFW/fineweb", "sample-10BT", "train")),
  ],
)
def test_hub_specs(spec, expected):
  source = hf_reader.parse_spec(spec)
  assert (source.path, source.config, source.split) == expected and not source.local


def test_local_specs(tmp_path, sst2):
  assert hf_reader.parse_spec(f"hf:{sst2}") == hf_reader.Source(f"hf:{sst2}", sst2, None, None, True)
  assert hf_reader.parse_spec(f"hf:{sst2}:test").split == "test"
  assert hf_reader.without_split(f"hf:{sst2}:test") == f"hf:{sst2}"
  assert hf_reader.without_split("hf:glue/sst2:test") == "hf:glue/sst2"
  missing = hf_reader.parse_spec("hf:./not/here:train")
  assert missing.local and missing.path == "./not/here" and missing.split == "train"
  for bad in ("hf:", "hf:a/b/c/d", "hf:glue//x"):
    assert _error(hf_reader.parse_spec, bad).startswith(f"bad hf spec {bad!r}: expected hf:NAME[/CONFIG][:SPLIT]")


# --- pretraining corpora -----------------------------------------------------------------------


def test_a_saved_corpus_streams_in_order_and_skips_blank_rows(tmp_path):
  texts = sentences(30)
  path = corpus([*texts[:10], "   ", *texts[10:], ""], tmp_path / "corpus", stars=list(range(32)))
  documents = sources.iter_documents(f"hf:{path}")
  assert next(documents) == texts[0]  # an iterator, not a list
  assert [texts[0], *documents] == texts
  assert list(sources.iter_documents(f"hf:{path}:train")) == texts  # deterministic; a single Dataset is `train`


def test_a_data_directory_streams_with_streaming_true(tmp_path):
  texts = sentences(9)
  directory = parquet_dir(glue_dict({"sentence": texts}, {"train": 9, "validation": 3}), tmp_path / "pq")
  dataset, split = hf_reader.open_split(f"hf:{directory}", stream=True)
  assert isinstance(dataset, datasets.IterableDataset) and split == "train"
  assert list(sources.iter_documents(f"hf:{directory}")) == texts
  assert list(sources.iter_documents(f"hf:{directory}:validation")) == texts[:3]


def test_a_jsonl_data_directory(tmp_path):
  (tmp_path / "js").mkdir()
  rows = [{"body": t, "id": i} for i, t in enumerate(sentences(5))]
  (tmp_path / "js" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  assert list(sources.iter_documents(f"hf:{tmp_path}/js")) == sentences(5)  # `body`: the only string column


def test_the_text_column_is_explicit_when_it_cannot_be_guessed(tmp_path):
  path = corpus(sentences(4), tmp_path / "two", column="body", title=["a", "b", "c", "d"])
  message = _error(sources.iter_documents, f"hf:{path}")
  assert message == (
    f"hf:{path} split 'train': cannot tell which column is the text; it has: body, title (set data.text_column)"
  )
  assert list(sources.iter_documents(f"hf:{path}", text_column="title")) == ["a", "b", "c", "d"]
  assert _error(sources.iter_documents, f"hf:{path}", text_column="txt") == (
    f"hf:{path} split 'train' has no column 'txt' (data.text_column); it has: body, title"
  )


def test_the_text_column_of_jsonl_files(tmp_path):
  path = tmp_path / "c.jsonl"
  path.write_text('{"body": "first doc"}\n{"body": "second doc"}\n')
  assert list(sources.iter_documents(str(path), text_column="body")) == ["first doc", "second doc"]
  assert _error(sources.iter_documents, str(path)) == f"{path}:1: expected a JSON object with a 'text' field"
  assert _error(sources.iter_documents, str(path), text_column="txt") == (
    f"{path}:1: expected a JSON object with a 'txt' field (data.text_column)"
  )


def test_an_empty_corpus_is_one_line(tmp_path):
  path = corpus([], tmp_path / "empty")
  assert _error(sources.iter_documents, f"hf:{path}") == f"no text in hf:{path} split 'train'"
  blank = corpus(["", "  "], tmp_path / "blank")
  assert _error(sources.iter_documents, f"hf:{blank}") == f"no text in hf:{blank} split 'train'"


# --- labeled records ---------------------------------------------------------------------------


def test_sst2_records_label_names_and_the_eval_split(sst2):
  records, names = _read(f"hf:{sst2}")
  assert names == GLUE_LABELS and len(records) == 12
  assert records[1] == {"text_a": sentences(12)[1], "text_b": None, "label": 1, "where": f"hf:{sst2}:train[1]"}
  records, names = _read(f"hf:{sst2}", "eval")  # no split named: validation
  assert [r["where"] for r in records] == [f"hf:{sst2}:validation[{i}]" for i in range(6)] and names == GLUE_LABELS
  assert len(_read(f"hf:{sst2}", limit=5)[0]) == 5


def test_unlabeled_rows_are_dropped(tmp_path, sst2):
  assert _error(_read, f"hf:{sst2}:test") == f"no labeled examples in hf:{sst2}:test split 'test'"
  mixed = glue_dict({"sentence": sentences(4)}, {"train": 4})
  mixed["train"] = mixed["train"].map(lambda row, i: {"label": -1 if i == 2 else row["label"]}, with_indices=True)
  path = save(mixed, tmp_path / "mixed")
  assert [r["where"] for r in _read(f"hf:{path}")[0]] == [f"hf:{path}:train[{i}]" for i in (0, 1, 3)]


@pytest.mark.parametrize(
  "columns, first, second",
  [
    (("sentence",), "sentence", None),  # sst2, cola
    (("sentence1", "sentence2"), "sentence1", "sentence2"),  # mrpc, stsb, rte, wnli
    (("question1", "question2"), "question1", "question2"),  # qqp
    (("premise", "hypothesis"), "premise", "hypothesis"),  # mnli
    (("question", "sentence"), "question", "sentence"),  # qnli
  ],
)
def test_glue_schemas_read_their_texts(tmp_path, columns, first, second):
  values = {name: [f"{name} {t}" for t in sentences(4)] for name in columns}
  path = save(glue_dict(values, {"train": 4}), tmp_path / "glue")
  records, names = _read(f"hf:{path}")
  assert [r["text_a"] for r in records] == values[first] and names == GLUE_LABELS
  assert [r["text_b"] for r in records] == (values[second] if second else [None] * 4)


def test_mnli_evaluates_on_validation_matched(tmp_path):
  values = {"premise": sentences(6), "hypothesis": sentences(6, 100)}
  splits = {"train": 6, "validation_matched": 3, "validation_mismatched": 2, "test_matched": 2}
  path = save(glue_dict(values, splits, label_names=["entailment", "neutral"]), tmp_path / "mnli")
  records, names = _read(f"hf:{path}", "eval")
  assert [r["where"] for r in records][0] == f"hf:{path}:validation_matched[0]" and len(records) == 3
  assert names == ["entailment", "neutral"]


def test_test_is_the_eval_split_without_validation(tmp_path):
  path = save(glue_dict({"sentence": sentences(4)}, {"train": 4, "test": 2}, unlabeled=()), tmp_path / "d")
  assert [r["where"] for r in _read(f"hf:{path}", "eval")[0]] == [f"hf:{path}:test[0]", f"hf:{path}:test[1]"]


def test_explicit_columns(tmp_path):
  import datasets

  rows = {"review": sentences(4), "summary": sentences(4, 50), "stars": ["neg", "pos", "pos", "neg"]}
  path = save(datasets.Dataset.from_dict(rows), tmp_path / "reviews")
  message = _error(_read, f"hf:{path}")
  assert message == (
    f"hf:{path}:train[0]: no text field (expected 'text', or 'text_a' and 'text_b'; it has: review, summary, stars)"
  )
  records, names = _read(f"hf:{path}", columns=Columns("review", "summary", "stars"))
  assert names is None
  assert [(r["text_a"], r["text_b"], r["label"]) for r in records] == list(zip(*rows.values()))
  single = _read(f"hf:{path}", columns=Columns("summary", label="stars"))[0]
  assert [r["text_a"] for r in single] == rows["summary"] and {r["text_b"] for r in single} == {None}
  assert _error(_read, f"hf:{path}", columns=Columns("review", label="rating")) == (
    f"hf:{path} split 'train' has no column 'rating' (data.label_column); it has: review, summary, stars"
  )
  assert _error(Columns, text_pair="summary") == (
    "data.text_pair_column='summary' needs data.text_column (the pair's first text)"
  )


def test_explicit_columns_of_csv_and_jsonl_files(tmp_path):
  csv = tmp_path / "t.csv"
  csv.write_text("review,other,stars\ngood film,so good,pos\nbad film,so bad,neg\n")
  records, _ = labeled.read_examples(
    str(csv), kinds.CLASSIFICATION, split="train", columns=Columns("review", "other", "stars")
  )
  assert [(r["text_a"], r["text_b"], r["label"]) for r in records] == [
    ("good film", "so good", "pos"),
    ("bad film", "so bad", "neg"),
  ]
  jsonl = tmp_path / "t.jsonl"
  jsonl.write_text('{"body": "good film", "y": 1}\n')
  assert _error(labeled.read_examples, str(jsonl), kinds.CLASSIFICATION, split="train", columns=Columns("text")) == (
    f"{jsonl}:1: no column 'text' (data.text_column; it has: body, y)"
  )
  records, _ = labeled.read_examples(
    str(jsonl), kinds.CLASSIFICATION, split="train", columns=Columns("body", label="y")
  )
  assert records[0]["text_a"] == "good film" and records[0]["label"] == 1


def test_token_classification_tags_name_their_labels(tmp_path):
  import datasets

  features = datasets.Features(
    {
      "tokens": datasets.Sequence(datasets.Value("string")),
      "ner_tags": datasets.Sequence(datasets.ClassLabel(names=["O", "B-PER"])),
    }
  )
  rows = {"tokens": [["Ann", "runs"], ["Bob", "sat", "down"]], "ner_tags": [[1, 0], [1, 0, 0]]}
  path = save(datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows, features=features)}), tmp_path / "ner")
  records, names = _read(f"hf:{path}", kind=kinds.TOKEN_CLASSIFICATION)
  assert names == ["O", "B-PER"] and [r["tokens"] for r in records] == rows["tokens"]
  assert [r["tags"] for r in records] == rows["ner_tags"]


def test_translation_pairs_follow_the_languages(tmp_path):
  import datasets

  features = datasets.Features({"translation": datasets.Translation(languages=["de", "en"])})
  rows = [{"de": "hallo welt", "en": "hello world"}, {"de": "guten tag", "en": "good day"}]
  path = save(datasets.Dataset.from_dict({"translation": rows}, features=features), tmp_path / "wmt")
  out = pairs.read_pairs(f"hf:{path}", "train")
  assert [(p["source"], p["target"]) for p in out] == [("hallo welt", "hello world"), ("guten tag", "good day")]
  assert out[0]["where"] == f"hf:{path}:train[0]"
  reverse = pairs.read_pairs(f"hf:{path}", "train", limit=1, source_field="en", target_field="de")
  assert [(p["source"], p["target"]) for p in reverse] == [("hello world", "hallo welt")]


def test_the_column_keys_of_a_config():
  from jaxpretrain import config as config_lib

  config = config_lib.defaults()
  assert Columns.of(config) == Columns() == labeled.NO_COLUMNS
  config_lib.apply_overrides(
    config, [("data.text_column", "review"), ("data.text_pair_column", "summary"), ("data.label_column", "stars")]
  )
  assert Columns.of(config) == Columns("review", "summary", "stars")


def test_the_text_column_of_a_tfds_dataset():
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=3, policy=tfds.testing.MockPolicy.USE_CODE):
    assert len(list(sources.iter_documents("tfds:imdb_reviews", text_column="text"))) == 3
    assert _error(sources.iter_documents, "tfds:imdb_reviews", text_column="body") == (
      "tfds:imdb_reviews has no feature 'body' (data.text_column); it has: text, label"
    )


# --- what cannot be had ------------------------------------------------------------------------


def test_a_missing_directory(tmp_path):
  assert _error(_read, f"hf:{tmp_path}/nothing") == f"hf dataset directory not found: {tmp_path}/nothing"
  assert _error(sources.iter_documents, f"hf:{tmp_path}/nothing:train") == (
    f"hf dataset directory not found: {tmp_path}/nothing"
  )


def test_an_unknown_split_lists_the_splits(tmp_path, sst2):
  assert _error(_read, f"hf:{sst2}:dev") == f"hf:{sst2}:dev has no split 'dev' (it has: train, validation, test)"
  directory = parquet_dir(glue_dict({"sentence": sentences(3)}, {"train": 3}), tmp_path / "pq")
  assert _error(sources.iter_documents, f"hf:{directory}:validation") == (
    f"hf:{directory}:validation has no split 'validation' (it has: train)"
  )
  assert _error(_read, f"hf:{directory}", "eval") == (
    f"hf:{directory} has no validation or test split (it has: train); set data.eval"
  )


def test_an_empty_labeled_dataset(tmp_path):
  path = save(glue_dict({"sentence": []}, {"train": 0}), tmp_path / "empty")
  assert _error(_read, f"hf:{path}") == f"no labeled examples in hf:{path} split 'train'"


def test_a_hub_name_not_in_the_cache_offline():
  assert _error(_read, "hf:glue/sst2") == (
    "cannot load hf:glue/sst2: Couldn't reach 'glue' on the Hub (OfflineModeIsEnabled) "
    "(offline mode is on and the HF cache does not have it)"
  )


def test_an_unknown_config_lists_the_configs(monkeypatch):
  def builder(name, config=None):
    raise ValueError(f"BuilderConfig '{config}' not found. Available: ['cola', 'sst2']\nmore lines")

  monkeypatch.setattr(datasets, "load_dataset_builder", builder)
  assert _error(_read, "hf:glue/nope") == (
    "cannot load hf:glue/nope: BuilderConfig 'nope' not found. Available: ['cola', 'sst2']"
  )


def test_owner_and_name_is_tried_when_there_is_no_such_dataset(monkeypatch):
  asked = []

  def builder(name, config=None):
    asked.append((name, config))
    if config:
      raise datasets.exceptions.DatasetNotFoundError(f"Dataset '{name}' doesn't exist on the Hub")
    raise datasets.exceptions.DatasetNotFoundError(f"Dataset '{name}' is gated")

  monkeypatch.setattr(datasets, "load_dataset_builder", builder)
  assert _error(_read, "hf:someone/corpus") == "cannot load hf:someone/corpus: Dataset 'someone/corpus' is gated"
  assert asked == [("someone", "corpus"), ("someone/corpus", None)]


# --- tfds without TensorFlow -------------------------------------------------------------------


def test_a_tfds_dataset_that_needs_tensorflow(monkeypatch):
  tfds = pytest.importorskip("tensorflow_datasets")
  from jaxpretrain.data.readers import tfds as tfds_reader

  monkeypatch.setattr(tfds_reader, "_tensorflow_installed", lambda: False)
  expected = (
    'tfds:glue/sst2 needs TensorFlow, which is not installed: pip install "jaxpretrain[tf]", or read the '
    "Hugging Face copy with hf:glue/sst2 (docs/data.md)"
  )
  if importlib.util.find_spec("tensorflow") is None:  # for real: tfds does not register glue without TensorFlow
    assert _error(_read, "tfds:glue/sst2") == expected

  def needs_tf(*args, **kwargs):
    raise ModuleNotFoundError("No module named 'tensorflow'", name="tensorflow")

  monkeypatch.setattr(tfds, "builder", needs_tf)
  monkeypatch.setattr(tfds, "data_source", needs_tf)
  assert _error(_read, "tfds:glue/sst2") == expected
  assert _error(sources.iter_documents, "tfds:glue/sst2") == expected


# --- cost --------------------------------------------------------------------------------------


def test_readers_import_datasets_only_for_hf_specs():
  code = (
    "import sys; from jaxpretrain.data.readers import text, labeled, pairs; "
    "from jaxpretrain.data.finetune import base; "
    "list(text.iter_documents('embedded', embedded_documents=2)); "
    "assert 'datasets' not in sys.modules"
  )
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  subprocess.run([sys.executable, "-c", code], check=True, cwd=root)
