"""Corpus specs: text and jsonl files, globs, tfds (offline, via mock_data), and their errors."""

import json
import os
import subprocess
import sys

import pytest

from jaxpretrain.data.readers import embedded
from jaxpretrain.data.readers import text as sources
from jaxpretrain.data.readers import tfds as tfds_reader
from jaxpretrain.errors import UserError


def docs(spec, **kw):
  return list(sources.iter_documents(spec, **kw))


def write(path, text, mode="w"):
  with open(path, mode) as f:
    f.write(text)
  return str(path)


def test_embedded():
  assert docs("embedded", embedded_documents=5, seed=2) == list(embedded.documents(5, seed=2))


def test_text_lines(tmp_path):
  path = write(tmp_path / "a.txt", "first doc\n  second doc  \nthird doc")
  assert docs(path) == ["first doc", "second doc", "third doc"]


def test_text_lines_ignore_trailing_blank_lines(tmp_path):
  # A blank line only means paragraphs when it separates text; a trailing one does not.
  assert docs(write(tmp_path / "a.txt", "one\ntwo\n\n\n")) == ["one", "two"]


def test_text_paragraphs(tmp_path):
  path = write(tmp_path / "a.txt", "\nline one\nline two\n\n\nnext para\n  \nlast\n")
  assert docs(path) == ["line one\nline two", "next para", "last"]


def test_jsonl(tmp_path):
  lines = [json.dumps({"text": "alpha beta", "id": 1}), "", json.dumps({"text": "gamma"}), json.dumps({"text": "   "})]
  assert docs(write(tmp_path / "a.jsonl", "\n".join(lines) + "\n")) == ["alpha beta", "gamma"]


def test_glob_and_directory_in_sorted_order(tmp_path):
  write(tmp_path / "b.txt", "from b\n")
  write(tmp_path / "a.jsonl", json.dumps({"text": "from a"}) + "\n")
  write(tmp_path / "c.md", "ignored by the directory spec\n")
  assert docs(str(tmp_path / "*.txt")) == ["from b"]
  assert docs(str(tmp_path / "*.*")) == ["from a", "from b", "ignored by the directory spec"]
  assert docs(str(tmp_path)) == ["from a", "from b"]


@pytest.mark.parametrize(
  "make, message",
  [
    (lambda d: str(d / "missing.txt"), r"data file not found: .*missing\.txt$"),
    (lambda d: str(d / "*.nothing"), r"no files match .*\*\.nothing$"),
    (lambda d: write(d / "empty.txt", ""), r"data file is empty: .*empty\.txt$"),
    (lambda d: "", r"no data source given"),
  ],
)
def test_errors_at_call(tmp_path, make, message):
  with pytest.raises(UserError, match=message) as e:
    sources.iter_documents(make(tmp_path))
  assert "\n" not in str(e.value)


def test_non_utf8_names_file_line_and_offset(tmp_path):
  path = write(tmp_path / "latin1.txt", b"good line\nbad \xe9t\xe9\n", mode="wb")
  with pytest.raises(
    UserError,
    match=r"latin1\.txt is not UTF-8 text: bad byte 0xe9 at line 2, "
    r"byte offset 14$",
  ):
    docs(path)


def test_whitespace_only_file_has_no_text(tmp_path):
  with pytest.raises(UserError, match=r"no text in .*blank\.txt$"):
    docs(write(tmp_path / "blank.txt", "\n   \n\n"))


@pytest.mark.parametrize(
  "line, message",
  [
    ("{not json", r"bad\.jsonl:2: not JSON"),
    (json.dumps({"body": "x"}), r"bad\.jsonl:2: expected a JSON object with a 'text' field$"),
    (json.dumps({"text": 3}), r"bad\.jsonl:2: 'text' is int, not a string$"),
  ],
)
def test_jsonl_errors_name_the_line(tmp_path, line, message):
  path = write(tmp_path / "bad.jsonl", json.dumps({"text": "fine"}) + "\n" + line + "\n")
  with pytest.raises(UserError, match=message):
    docs(path)


@pytest.fixture
def mock_tfds():
  tfds = pytest.importorskip("tensorflow_datasets")
  # USE_CODE: examples come from the dataset's own features; no files, no TensorFlow needed.
  with tfds.testing.mock_data(num_examples=7, policy=tfds.testing.MockPolicy.USE_CODE):
    yield


def test_tfds_text_field(mock_tfds):
  out = docs("tfds:imdb_reviews")
  assert len(out) == 7 and all(isinstance(d, str) and d.strip() for d in out)
  assert len(docs("tfds:imdb_reviews/plain_text:test")) == 7


def test_tfds_errors(mock_tfds):
  with pytest.raises(
    UserError,
    match=r"^unknown tfds dataset 'no_such_dataset' in "
    r"tfds:no_such_dataset \(",
  ):
    sources.iter_documents("tfds:no_such_dataset")
  with pytest.raises(UserError, match=r"^cannot read tfds:imdb_reviews/nope: "):
    sources.iter_documents("tfds:imdb_reviews/nope")
  # ag_news_subset has two text features (title, description): which one is ambiguous.
  with pytest.raises(UserError, match="cannot tell which feature is the text"):
    sources.iter_documents("tfds:ag_news_subset")
  with pytest.raises(UserError, match="bad tfds spec"):
    sources.iter_documents("tfds:")


def test_tfds_spec_parsing():
  assert tfds_reader.parse_spec("tfds:wiki40b/en") == ("wiki40b/en", "train")
  assert tfds_reader.parse_spec("tfds:imdb_reviews:train[:10%]") == ("imdb_reviews", "train[:10%]")


def test_data_modules_do_not_import_tfds():
  code = (
    "import sys; from jaxpretrain.data.readers import text as sources; "
    "from jaxpretrain.data.pretrain import pipeline, prepare, loader; from jaxpretrain.data import tokenizer; "
    "list(sources.iter_documents('embedded', embedded_documents=2)); "
    "assert 'tensorflow_datasets' not in sys.modules"
  )
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  subprocess.run([sys.executable, "-c", code], check=True, cwd=root)
