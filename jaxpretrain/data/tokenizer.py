"""`Tokenizer`: a Hugging Face fast tokenizer with the few things the pipeline needs.

It wraps `transformers.PreTrainedTokenizerFast`, so a saved tokenizer is a normal HF tokenizer
directory (`AutoTokenizer.from_pretrained` reads it) and any HF tokenizer directory loads: one
trained here, bert-base-uncased, or GPT-2's. `Tokenizer.train` trains one of `TRAINERS`: a
lowercasing WordPiece (BERT's), a byte-level BPE with <|endoftext|> (GPT-2's), or a
SentencePiece-like Unigram with BERT's specials; each gives the same vocabulary for the same texts
in any process.
"""

from __future__ import annotations

import hashlib
import json
import os
import unicodedata
from collections.abc import Iterable, Sequence

import numpy as np

from jaxpretrain import files, paths
from jaxpretrain.errors import UserError, first_line

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # ids 0..4 in that order


class Tokenizer:
  """A fast HF tokenizer plus `special_ids`, batched encoding without specials, and a fingerprint."""

  def __init__(self, hf_tokenizer):
    """Wraps a loaded `transformers.PreTrainedTokenizerFast`."""
    from tokenizers import Tokenizer as RustTokenizer

    self.hf = hf_tokenizer
    self._json = hf_tokenizer.backend_tokenizer.to_str()
    # A private copy for `encode_batch`: some saved tokenizers (e.g. sentence-transformers ones)
    # turn on padding or truncation, which must not leak into raw document encoding.
    self._backend = RustTokenizer.from_str(self._json)
    self._backend.no_padding()
    self._backend.no_truncation()
    self._ascii_backend = _without_bert_normalizer(self._json)
    self.special_ids = _special_ids(hf_tokenizer)
    self.all_special_ids = sorted(
      {i for i in self.special_ids.values() if i is not None} | set(hf_tokenizer.all_special_ids)
    )

  @classmethod
  def train(cls, kind: str, texts: Iterable[str], vocab_size: int) -> Tokenizer:
    """Trains a tokenizer of `kind` on `texts`.

    Args:
      kind: a key of `TRAINERS`: "wordpiece" (lowercasing, BERT's), "bpe" (byte-level, GPT-2's)
        or "unigram" (SentencePiece-like, with BERT's specials).
      texts: the training texts (any iterable; read once).
      vocab_size: the vocabulary size, special tokens included (an upper bound: a small corpus
        may yield fewer tokens).

    Returns:
      The tokenizer; the same texts always give the same vocabulary and fingerprint.
    """
    if kind not in TRAINERS:
      raise UserError(f"data.tokenizer_type={kind!r}; choose {', '.join(TRAINERS)}")
    return cls(TRAINERS[kind](texts if isinstance(texts, list) else list(texts), vocab_size))

  @classmethod
  def train_wordpiece(cls, texts: Iterable[str], vocab_size: int) -> Tokenizer:
    """`train("wordpiece", texts, vocab_size)`: a lowercasing BERT-style WordPiece tokenizer."""
    return cls.train("wordpiece", texts, vocab_size)

  @classmethod
  def load(cls, path_or_dir: str) -> Tokenizer:
    """Loads a HF tokenizer directory (or a `tokenizer.json` file).

    Args:
      path_or_dir: a directory `AutoTokenizer.from_pretrained` reads, or a tokenizer.json path;
        `hf:DIR` is the same as `DIR` (`data.tokenizer=hf:DIR`). A remote directory (`gs://...`)
        is read from a fresh local copy.

    Returns:
      The tokenizer.
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    path_or_dir = local_path(path_or_dir)
    if paths.is_remote(path_or_dir) and paths.isdir(path_or_dir):  # `tokenizers` reads local files only
      path_or_dir = paths.local_copy(path_or_dir)
    if not path_or_dir or not os.path.exists(path_or_dir):
      raise UserError(f"tokenizer not found: {path_or_dir!r} (expected a HF tokenizer directory)")
    check_files(path_or_dir)
    try:
      if os.path.isfile(path_or_dir):
        hf = PreTrainedTokenizerFast(tokenizer_file=path_or_dir)
      else:
        hf = AutoTokenizer.from_pretrained(path_or_dir, use_fast=True)
    except Exception as e:  # OSError, ValueError, and the Rust tokenizer's plain Exception on a bad file
      raise UserError(f"cannot load tokenizer from {path_or_dir}: {first_line(e)}") from None
    if not getattr(hf, "is_fast", False):
      raise UserError(f"tokenizer in {path_or_dir} has no fast (tokenizer.json) version")
    return cls(hf)

  def save(self, directory: str) -> None:
    """Writes a HF tokenizer directory (tokenizer.json, tokenizer_config.json, ...)."""
    os.makedirs(directory, exist_ok=True)
    self.hf.save_pretrained(directory)

  @property
  def vocab_size(self) -> int:
    """The number of ids, added tokens included."""
    return len(self.hf)

  def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text, no special tokens; one batched (parallel, Rust) call.

    Args:
      texts: the texts.

    Returns:
      One list of ids per text.
    """
    texts = list(texts)
    if self._ascii_backend is None:
      return _encode_ids(self._backend, texts)
    # On ASCII text BertNormalizer only lowercases and cleans control characters: doing that in
    # Python and skipping the normalizer gives the same ids for ~40% less CPU (benchmarks/RESULTS.md).
    ascii_rows = [i for i, text in enumerate(texts) if text.isascii()]
    other_rows = [i for i, text in enumerate(texts) if not text.isascii()]
    ids: list[list[int]] = [[] for _ in texts]
    for rows, backend, prepare in (
      (ascii_rows, self._ascii_backend, lambda t: t.translate(_ASCII_BERT_CLEAN)),
      (other_rows, self._backend, lambda t: t),
    ):
      if rows:
        for i, row in zip(rows, _encode_ids(backend, [prepare(texts[i]) for i in rows])):
          ids[i] = row
    return ids

  def encode_examples(
    self, texts_a: Sequence[str], texts_b: Sequence[str] | None = None, *, max_length: int
  ) -> dict[str, np.ndarray]:
    """Encodes single texts or pairs as `[CLS] a [SEP] (b [SEP])`, truncated and padded.

    Works for tokenizers without [CLS]/[SEP] too (GPT-2 style: eos stands in for both).

    Args:
      texts_a: first texts.
      texts_b: optional second texts, one per first text.
      max_length: the length every row is truncated or padded to.

    Returns:
      `input_ids`, `token_type_ids`, `attention_mask`: np.int32 arrays [len(texts_a), max_length].
    """
    if texts_b is not None and len(texts_b) != len(texts_a):
      raise UserError(f"{len(texts_a)} first texts but {len(texts_b)} second texts")
    cls_id, sep_id = self.special_ids["cls"], self.special_ids["sep"]
    n_specials = 2 if texts_b is None else 3
    if max_length < n_specials + 1:
      raise UserError(f"max_length {max_length} is too small for {n_specials} special tokens")
    ids_a = self.encode_batch(texts_a)
    ids_b = self.encode_batch(texts_b) if texts_b is not None else None
    n = len(ids_a)
    input_ids = np.full((n, max_length), self.special_ids["pad"], np.int32)
    token_type_ids = np.zeros((n, max_length), np.int32)
    attention_mask = np.zeros((n, max_length), np.int32)
    budget = max_length - n_specials
    for i, a in enumerate(ids_a):
      b = ids_b[i] if ids_b is not None else []
      a, b = _truncate_pair(a, b, budget)
      row = [cls_id] + a + [sep_id]
      if ids_b is not None:
        row += b + [sep_id]
        token_type_ids[i, len(a) + 2 : len(row)] = 1
      input_ids[i, : len(row)] = row
      attention_mask[i, : len(row)] = 1
    return {"input_ids": input_ids, "token_type_ids": token_type_ids, "attention_mask": attention_mask}

  def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
    """The text of `ids`."""
    return self.hf.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

  def fingerprint(self) -> str:
    """A short sha256 of the tokenizer.json content: equal fingerprints, equal tokenization."""
    return hashlib.sha256(self._json.encode("utf-8")).hexdigest()[:16]


# --- trainers: kind -> (texts, vocab_size) -> a transformers fast tokenizer ------------------------


def _train_wordpiece(texts: list[str], vocab_size: int):
  """A lowercasing BERT-style WordPiece tokenizer: [PAD] [UNK] [CLS] [SEP] [MASK], then the vocabulary."""
  from tokenizers import Tokenizer as RustTokenizer
  from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers
  from transformers import PreTrainedTokenizerFast

  if vocab_size < len(SPECIAL_TOKENS) + 1:
    raise UserError(f"vocab_size must be at least {len(SPECIAL_TOKENS) + 1}, got {vocab_size}")
  normalizer = normalizers.BertNormalizer(
    lowercase=True, clean_text=True, handle_chinese_chars=True, strip_accents=None
  )
  # The Rust trainer numbers the initial "##x" units in hash-map order (random per process), and
  # merge ties are broken by id, so two runs can learn different vocabularies. Fixing the ids of
  # every initial unit up front (as extra "special" tokens, sorted) makes training deterministic.
  raw_chars = set()
  for text in texts:
    raw_chars.update(text)
  chars = sorted({c for raw in raw_chars for c in normalizer.normalize_str(raw) if not c.isspace()})
  if not chars:
    raise UserError("cannot train a tokenizer: the corpus has no text")
  # Punctuation is always split off alone, so it never continues a word: no "##," unit.
  initial_units = chars + ["##" + c for c in chars if not _is_punctuation(c)]
  rust = RustTokenizer(models.WordPiece(unk_token="[UNK]"))
  rust.normalizer = normalizer
  rust.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
  trainer = trainers.WordPieceTrainer(
    vocab_size=vocab_size,
    special_tokens=SPECIAL_TOKENS + initial_units,
    min_frequency=2,
    show_progress=False,
    continuing_subword_prefix="##",
  )
  rust.train_from_iterator(texts, trainer=trainer)
  # Rebuild from the vocabulary alone, so the initial units are ordinary tokens again.
  vocab = rust.get_vocab(with_added_tokens=False)
  rust = RustTokenizer(
    models.WordPiece(vocab=vocab, unk_token="[UNK]", continuing_subword_prefix="##", max_input_chars_per_word=100)
  )
  rust.normalizer = normalizer
  rust.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
  rust.decoder = decoders.WordPiece(prefix="##")
  rust.add_special_tokens(SPECIAL_TOKENS)
  rust.post_processor = _bert_template(rust)
  return PreTrainedTokenizerFast(tokenizer_object=rust, do_lower_case=True, **_BERT_SPECIALS)


def _train_byte_level_bpe(texts: list[str], vocab_size: int):
  """A GPT-2 style byte-level BPE: <|endoftext|> (id 0), the 256 byte symbols, then the merges.

  No normalization and no unknowns: every text encodes, and decodes back to exactly itself.
  <|endoftext|> is bos, eos, unk and pad (GPT-2's convention: packed rows and segment ids mask
  the padding, so it is never a target).
  """
  from tokenizers import Tokenizer as RustTokenizer
  from tokenizers import decoders, models, pre_tokenizers, processors, trainers
  from transformers import PreTrainedTokenizerFast

  alphabet = pre_tokenizers.ByteLevel.alphabet()
  if vocab_size < len(alphabet) + 1:
    raise UserError(f"vocab_size must be at least {len(alphabet) + 1} for a byte-level BPE, got {vocab_size}")
  if not any(texts):
    raise UserError("cannot train a tokenizer: the corpus has no text")
  rust = RustTokenizer(models.BPE())
  rust.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  rust.decoder = decoders.ByteLevel()
  rust.post_processor = processors.ByteLevel(trim_offsets=False)  # as GPT-2's tokenizer.json
  # Deterministic as it is: every symbol is in the initial alphabet, which the trainer numbers in
  # sorted order, and merge ties are broken by those ids (no hash-ordered "##x" units as in WordPiece).
  trainer = trainers.BpeTrainer(
    vocab_size=vocab_size,
    min_frequency=2,
    special_tokens=[END_OF_TEXT],
    initial_alphabet=alphabet,
    show_progress=False,
  )
  rust.train_from_iterator(texts, trainer=trainer)
  return PreTrainedTokenizerFast(
    tokenizer_object=rust,
    bos_token=END_OF_TEXT,
    eos_token=END_OF_TEXT,
    unk_token=END_OF_TEXT,
    pad_token=END_OF_TEXT,
    model_max_length=BPE_MODEL_MAX_LENGTH,
    clean_up_tokenization_spaces=False,
    model_input_names=["input_ids", "attention_mask"],
  )


def _train_unigram(texts: list[str], vocab_size: int):
  """A SentencePiece-like Unigram tokenizer (NFKC, "▁" for spaces) with BERT's specials, so MLM works."""
  from tokenizers import Tokenizer as RustTokenizer
  from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers
  from transformers import PreTrainedTokenizerFast

  if vocab_size < len(SPECIAL_TOKENS) + 1:
    raise UserError(f"vocab_size must be at least {len(SPECIAL_TOKENS) + 1}, got {vocab_size}")
  if not any(not text.isspace() for text in texts if text):
    raise UserError("cannot train a tokenizer: the corpus has no text")
  normalizer = normalizers.NFKC()
  pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
  rust = RustTokenizer(models.Unigram())
  rust.normalizer, rust.pre_tokenizer = normalizer, pre_tokenizer
  trainer = trainers.UnigramTrainer(
    vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, unk_token="[UNK]", show_progress=False
  )
  rust.train_from_iterator(texts, trainer=trainer)
  vocab = _canonical_unigram_vocab(json.loads(rust.to_str())["model"]["vocab"], len(SPECIAL_TOKENS))
  rust = RustTokenizer(models.Unigram(vocab, unk_id=SPECIAL_TOKENS.index("[UNK]"), byte_fallback=False))
  rust.normalizer, rust.pre_tokenizer = normalizer, pre_tokenizer
  rust.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
  rust.add_special_tokens(SPECIAL_TOKENS)
  rust.post_processor = _bert_template(rust)
  return PreTrainedTokenizerFast(tokenizer_object=rust, clean_up_tokenization_spaces=False, **_BERT_SPECIALS)


TRAINERS = {"wordpiece": _train_wordpiece, "bpe": _train_byte_level_bpe, "unigram": _train_unigram}
WITHOUT_MASK_TOKEN = ("bpe",)  # trained kinds with no [MASK] (GPT-2's vocabulary has none)

END_OF_TEXT = "<|endoftext|>"
BPE_MODEL_MAX_LENGTH = 1024  # GPT-2's; an export sets the model's own input length
# Unigram scores (log probabilities) are rounded to this many decimals: far coarser than their
# float noise (up to ~1e-10, see `_canonical_unigram_vocab`), far finer than any score gap that
# changes a segmentation in practice.
UNIGRAM_SCORE_DECIMALS = 4
_UNIGRAM_ADDED_CHAR_STEP = 0.0001  # the Rust trainer's score step between the characters it adds back
_BERT_SPECIALS = dict(
  unk_token="[UNK]",
  pad_token="[PAD]",
  cls_token="[CLS]",
  sep_token="[SEP]",
  mask_token="[MASK]",
  model_max_length=512,
  model_input_names=["input_ids", "token_type_ids", "attention_mask"],
)


def _bert_template(rust):
  """The `[CLS] a [SEP] (b [SEP])` post-processor of a tokenizer that has [CLS] and [SEP]."""
  from tokenizers import processors

  cls_id, sep_id = rust.token_to_id("[CLS]"), rust.token_to_id("[SEP]")
  return processors.TemplateProcessing(
    single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
  )


def _canonical_unigram_vocab(vocab: list, n_special: int) -> list[tuple[str, float]]:
  """The Rust Unigram trainer's vocabulary made independent of its hash-map order.

  The trainer iterates the corpus's words in hash-map order (random per process). So its EM sums
  come out in different orders (scores differ by up to ~1e-10), and the characters it adds back
  after pruning (every character must stay encodable) get the scores `min_score + k * 0.0001`,
  k = 0, 1, ..., in that order. Here those characters all get `min_score`, every score is rounded
  to `UNIGRAM_SCORE_DECIMALS` places, and the pieces are sorted by (score descending, piece).

  Args:
    vocab: the trained model's [piece, score] pairs, the special tokens first.
    n_special: how many special tokens lead the list (kept in place, score 0).

  Returns:
    The (piece, score) pairs of the same pieces.
  """
  specials, pieces = [(p, 0.0) for p, _ in vocab[:n_special]], [(p, s) for p, s in vocab[n_special:]]
  if not pieces:
    return specials
  lowest = min(s for _, s in pieces)
  added_scores, penalty = set(), 0.0
  for _ in range(sum(len(p) == 1 for p, _ in pieces)):  # the trainer's own float steps: exact matches
    added_scores.add(lowest + penalty)
    penalty += _UNIGRAM_ADDED_CHAR_STEP
  rounded = [(p, round(lowest if len(p) == 1 and s in added_scores else s, UNIGRAM_SCORE_DECIMALS)) for p, s in pieces]
  return specials + sorted(rounded, key=lambda ps: (-ps[1], ps[0]))


TOKENIZER_JSON_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json")
TOKENIZER_TEXT_FILES = ("vocab.txt", "merges.txt")


def local_path(tokenizer_spec: str) -> str:
  """The directory (or file) a `data.tokenizer` value names: `hf:DIR` and `DIR` both name DIR."""
  return tokenizer_spec.removeprefix("hf:")


def check_files(path_or_dir: str) -> None:
  """Reads a tokenizer file, or the tokenizer files of a directory, through `jaxpretrain.files`.

  A truncated JSON file, or a vocabulary that is not UTF-8 text, is then a one-line `UserError`
  naming the file, rather than a message from deep inside `transformers` naming none.

  Args:
    path_or_dir: a tokenizer.json file or a HF tokenizer directory.
  """
  if os.path.isfile(path_or_dir):
    files.read_json(path_or_dir, "tokenizer file")
    return
  files.check_dir(path_or_dir, "tokenizer directory", must_exist=True)
  for name in TOKENIZER_JSON_FILES + TOKENIZER_TEXT_FILES:
    path = os.path.join(path_or_dir, name)
    if not os.path.exists(path):
      continue
    if name.endswith(".json"):
      files.read_json(path, "tokenizer file")
    else:
      files.read_text(path, "tokenizer file")


# What BertNormalizer(clean_text=True, lowercase=True) does to ASCII: drop control characters other
# than tab/newline/carriage return, turn those three into spaces, lowercase.
_ASCII_BERT_CLEAN = {c: None for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F]}
_ASCII_BERT_CLEAN.update({0x09: " ", 0x0A: " ", 0x0D: " "})
_ASCII_BERT_CLEAN.update({c: chr(c + 32) for c in range(ord("A"), ord("Z") + 1)})


def _without_bert_normalizer(tokenizer_json: str):
  """A copy of the tokenizer without its normalizer, when that normalizer is a lowercasing,
  text-cleaning BertNormalizer (its whole effect on ASCII is `_ASCII_BERT_CLEAN`); else None."""
  from tokenizers import Tokenizer as RustTokenizer

  spec = json.loads(tokenizer_json)
  normalizer = spec.get("normalizer") or {}
  if not (normalizer.get("type") == "BertNormalizer" and normalizer.get("lowercase") and normalizer.get("clean_text")):
    return None
  spec["normalizer"] = None
  backend = RustTokenizer.from_str(json.dumps(spec))
  backend.no_padding()
  backend.no_truncation()
  return backend


def _encode_ids(backend, texts: list[str]) -> list[list[int]]:
  # encode_batch_fast skips character offsets: same ids, ~7% less CPU (benchmarks/RESULTS.md).
  encode = getattr(backend, "encode_batch_fast", backend.encode_batch)
  return [e.ids for e in encode(texts, add_special_tokens=False)]


def _is_punctuation(c: str) -> bool:
  """What BertPreTokenizer splits off as punctuation: ASCII symbols and Unicode P* characters."""
  cp = ord(c)
  return (
    33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126 or unicodedata.category(c).startswith("P")
  )


def _truncate_pair(a: list[int], b: list[int], budget: int) -> tuple[list[int], list[int]]:
  """Drops tokens from the end of the longer sequence until both fit (HF 'longest_first')."""
  excess = len(a) + len(b) - budget
  if excess <= 0:
    return a, b
  la, lb = len(a), len(b)
  cut = min(excess, abs(la - lb))  # first trim the longer one down to the shorter
  if la > lb:
    la -= cut
  else:
    lb -= cut
  excess -= cut
  la, lb = la - (excess + 1) // 2, lb - excess // 2  # then alternate, `a` first
  return a[:la], b[:lb]


def _special_ids(hf) -> dict:
  """pad, unk, cls, sep, mask, bos, eos ids (None where absent).

  GPT-2 style (eos, no [SEP]/[PAD]): eos stands in for sep, bos and pad, and bos for cls.
  """

  def tid(token):
    if token is None:
      return None
    i = hf.convert_tokens_to_ids(str(token))
    return None if i is None or (i == hf.unk_token_id and str(token) != str(hf.unk_token)) else i

  ids = {
    "pad": tid(hf.pad_token),
    "unk": tid(hf.unk_token),
    "cls": tid(hf.cls_token),
    "sep": tid(hf.sep_token),
    "mask": tid(hf.mask_token),
    "bos": tid(hf.bos_token),
    "eos": tid(hf.eos_token),
  }
  if ids["eos"] is not None:  # GPT-2 style: eos separates, starts, and pads
    for key in ("sep", "bos", "pad"):
      if ids[key] is None:
        ids[key] = ids["eos"]
  if ids["cls"] is None:  # `encode_examples` needs a first token
    ids["cls"] = ids["bos"]
  return ids
