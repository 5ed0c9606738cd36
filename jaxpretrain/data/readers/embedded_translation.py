"""An offline translation task between the embedded language and a second made-up one, "Embedded-B".

Embedded-B is a deterministic transformation of the embedded language (`data/readers/embedded.py`) with
its own vocabulary and its own word order, so a translator has to learn both a lexicon and a
reordering, and nothing about it leaks from spelling:

1. Word order. Within each clause (clauses end at ",", "so", "because", "but"):
   * adjectives follow their noun: an adjective (with its intensifier) directly before a noun
     moves after it: "a green salad" -> "a salad green";
   * clauses are verb-final (SOV): the clause's first verb group (verbs with "did", "not",
     "never") moves to the end: "my friend watched the plot on monday" -> "my friend the plot on
     monday watched"; "the soup was not very blorvish" -> "the soup very blorvish was not".
2. Vocabulary. Every word is replaced by its Embedded-B word: a fixed lexicon built from a CV
   syllable inventory (one-syllable words for function words, two or three syllables for the
   rest); "a" and "an" share a word. Words the lexicon lacks pass through unchanged.
3. Capitalization and punctuation mirror the source.

The task (`pairs`) translates Embedded-B *into* the embedded language: the decoder is pretrained
on the embedded corpus, so, as GPT-2 translated French into the English it was trained on, it
writes a language it knows and learns from the pairs to read a new one (its lexicon and word
order). Pairs are distinct sentences of embedded documents from a stream apart from the
pretraining corpus; a hash of the sentence puts it in the train or the test split, never both.
"""

from __future__ import annotations

import random
import re
import zlib

from jaxpretrain.data.readers import embedded
from jaxpretrain.errors import UserError

# The grammar's word classes. `embedded` keeps them private; they are read here, never changed.
_ASPECTS = {a for _, aspects, _ in embedded._TOPICS.values() for a in aspects}
_PLACES = {p for places, _, _ in embedded._TOPICS.values() for p in places}
_TOPIC_VERBS = {v for _, _, verbs in embedded._TOPICS.values() for v in verbs}
_LEXICON = embedded._LEXICON

NOUNS = frozenset(
  _ASPECTS
  | _PLACES
  | set(_LEXICON["noun"][0])
  | set(_LEXICON["noun"][1])
  | {"people", "dollars", "note", "refund", "kids", "friends"}
)
ADJECTIVES = frozenset(
  set(embedded._NEUTRAL_ADJS) | set(_LEXICON["adj"][0]) | set(_LEXICON["adj"][1]) | {"real", "glowing", "angry"}
)
INTENSIFIERS = frozenset(embedded._INTENSIFIERS)
VERBS = frozenset(
  _TOPIC_VERBS
  | set(_LEXICON["verb"][0])
  | set(_LEXICON["verb"][1])
  | {
    "was",
    "were",
    "seemed",
    "seem",
    "went",
    "paid",
    "talked",
    "arrived",
    "came",
    "applauded",
    "celebrated",
    "cheered",
    "complained",
    "cried",
    "demanded",
    "felt",
    "frowned",
    "grinned",
    "groaned",
    "laughed",
    "promised",
    "recommended",
    "regretted",
    "sighed",
    "smiled",
    "stayed",
    "thanked",
    "tipped",
    "vowed",
    "walked",
    "warned",
    "wrote",
  }
)
VERB_GROUP = VERBS | {"did", "not", "never"}
CLAUSE_ENDS = frozenset({",", "so", "because", "but"})
# Frequent function words get one-syllable translations, as in natural languages.
_SHORT = (
  "the",
  "a",
  "was",
  "were",
  "not",
  "never",
  "did",
  "so",
  "because",
  "but",
  "to",
  "at",
  "on",
  "in",
  "for",
  "with",
  "about",
  "it",
  "i",
  "we",
  "my",
  "our",
  "there",
  "them",
)
_TOKEN = re.compile(r"[a-z]+|[,.]")


def _source_words() -> list[str]:
  """Every word the embedded grammar can produce, sorted (the lexicon's domain)."""
  words = set(NOUNS | ADJECTIVES | INTENSIFIERS | VERB_GROUP | CLAUSE_ENDS) - {","}
  words |= embedded._reserved_words()
  return sorted(words | set(_SHORT))


def _make_lexicon() -> dict[str, str]:
  """Source word -> Embedded-B word; fixed forever (seeded), one-to-one except a/an."""
  rng = random.Random("jaxpretrain-embedded-translation-lexicon-v1")
  onsets = ["k", "t", "m", "n", "s", "h", "r", "w", "p", "b", "g", "d", "z", "y", "ch", "sh"]
  vowels = ["a", "i", "u", "e", "o"]
  taken = set(_source_words())
  lexicon = {}
  for word in _source_words():
    if word == "an":
      continue
    syllables = 1 if word in _SHORT else rng.choice((2, 2, 3))
    while True:
      candidate = "".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(syllables))
      if word in _SHORT and rng.random() < 0.5:
        candidate += rng.choice(("n", "m", "k"))  # more one-syllable words than CV alone allows
      if candidate not in taken:
        break
    taken.add(candidate)
    lexicon[word] = candidate
  lexicon["an"] = lexicon["a"]
  return lexicon


LEXICON = _make_lexicon()


def _reorder_clause(words: list[str]) -> list[str]:
  """Adjectives after their noun, then the first verb group to the end of the clause."""
  out = list(words)
  i = 0
  while i < len(out):
    if out[i] in ADJECTIVES and i + 1 < len(out) and out[i + 1] in NOUNS:
      start = i - 1 if i > 0 and out[i - 1] in INTENSIFIERS else i
      out[start : i + 2] = [out[i + 1], *out[start : i + 1]]
      i += 2
    else:
      i += 1
  start = 0
  while start < len(out):
    if out[start] in VERB_GROUP:
      end = start
      while end < len(out) and out[end] in VERB_GROUP:
        end += 1
      if any(w in VERBS for w in out[start:end]):
        return out[:start] + out[end:] + out[start:end]
      start = end
    else:
      start += 1
  return out


def translate_sentence(sentence: str) -> str:
  """Embedded-B translation of one sentence (lowercase words, "," and a final "." allowed).

  Args:
    sentence: e.g. "The soup was not very blorvish, so we cheered."

  Returns:
    The translation, capitalized and punctuated like the source.
  """
  tokens = _TOKEN.findall(sentence.lower())
  clauses, current = [], []
  for token in tokens:
    if token in CLAUSE_ENDS or token == ".":
      clauses += _reorder_clause(current) + [token]
      current = []
    else:
      current.append(token)
  clauses += _reorder_clause(current)
  words = [LEXICON.get(t, t) for t in clauses]
  text = " ".join(words).replace(" ,", ",").replace(" .", ".")
  if sentence[:1].isupper():
    text = text[:1].upper() + text[1:]
  return text


def translate(text: str) -> str:
  """Translates a text of sentences ending in "." (e.g. an embedded document) sentence by sentence."""
  return " ".join(translate_sentence(s) for s in _sentences(text))


def _sentences(text: str) -> list[str]:
  return [s if s.endswith(".") else s + "." for s in (p.strip() for p in text.split(". ")) if s.strip(". ")]


def _in_test(sentence: str) -> bool:
  return zlib.crc32(sentence.encode()) % 10 == 0  # one distinct sentence in ten


def pairs(split: str, num_pairs: int, seed: int = 0) -> list[dict]:
  """Distinct sentence pairs of the embedded translation task: Embedded-B into the embedded language.

  Args:
    split: "train" or "test" (disjoint: a hash of the sentence decides).
    num_pairs: how many pairs.
    seed: the stream of embedded documents the sentences come from.

  Returns:
    A list of `{"source": Embedded-B sentence, "target": embedded sentence}`; the same arguments
    always give the same list.
  """
  if split not in ("train", "test"):
    raise UserError(f"embedded translation split must be 'train' or 'test', got {split!r}")
  seen, out = set(), []
  for document in embedded.documents(10**9, seed=10_000 + seed):  # a stream apart from pretraining's
    for sentence in _sentences(document):
      if sentence in seen or _in_test(sentence) != (split == "test"):
        continue
      seen.add(sentence)
      out.append({"source": translate_sentence(sentence), "target": sentence})
      if len(out) == num_pairs:
        return out
  return out
