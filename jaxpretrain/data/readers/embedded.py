"""A synthetic English-like language, generated in code: the corpus the demo pretrains on.

Why it looks the way it does. The demo pretrains a small BERT (MLM) on `documents()`, fine-tunes it
on N..8N labeled reviews from `labeled_examples()`, and compares it with the same model trained from
scratch and with a bag-of-words vector-space model (VSM) whose word vectors come from document
co-occurrence. For pretraining to win, the labels must depend on knowledge that only the unlabeled
text holds, in a form a small contextual model picks up within a few million tokens:

* Sentiment lives in 320 made-up words (`POSITIVE_WORDS`, `NEGATIVE_WORDS`: 90+90 adjectives,
  35+35 nouns, 35+35 verbs) built from one syllable inventory, with polarity assigned by a shuffle,
  so spelling says nothing about it. A review mentions 1.4 of them on average, so a model trained
  from scratch on a few hundred reviews meets most sentiment words of the test set for the first
  time there.
* In the unlabeled text, 90% of sentiment words come with an adjacent cue that shares their own
  polarity: "the soup was delightfully blorvish", "it was a ghastly drelkon", "we grudgingly
  snorbate the pasta". Predicting a masked cue from its neighbour (or the word from its cue) is
  the kind of adjacent-token statistic MLM learns first; with tied embeddings it clusters the
  words by polarity. (Cues two or more tokens away — a gloss, a consequence — were measured not
  to be picked up by the demo's 2-layer model within its budget.) Cue words never occur in
  labeled reviews, so the task is not a keyword lookup.
* A sentiment clause is also often followed by a consequence ("..., so everyone smiled") and
  sometimes by a gloss ("..., simply awful") that show its *composed* sentiment: negation
  ("was not blorvish" -> negative) and contrast ("A, but B" -> the polarity of B). `CONSEQUENCE_WORDS`
  (consequences, glosses, cues, and the connectives "so"/"because") never occur in labeled reviews.
* A labeled review is one verdict sentence (60% simple, 20% negated, 20% contrast) plus, half
  the time, one neutral sentence. A bag of words that knew every word's polarity would still
  miss the composed 40%: counting polarity words scores 70% (measured on 4000 test reviews).
* A document talks about one topic (a restaurant, a film, a hotel, ...) but gives each clause an
  independent polarity, so document-level co-occurrence (what the VSM sees) carries little
  polarity signal while the sentence-level context (what MLM sees) carries all of it.
* Neutral sentences with real topic words, neutral adjectives ("the soup was green") and neutral
  negation ("the bread was not round") make the corpus look like language and force the model to
  learn which words carry sentiment rather than "the X was Y means sentiment".

Everything is seeded: the lexicon is fixed, `documents(n, seed)` and `labeled_examples(split, n,
seed)` are pure functions of their arguments. 40,000 documents hold about 4M words and take a few
seconds to generate.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator

from jaxpretrain.errors import UserError

LABEL_NAMES = ["negative", "positive"]

# Topic vocabulary: (places, aspects, neutral past-tense verbs taking an aspect as object).
_TOPICS = {
  "restaurant": (
    ["restaurant", "cafe", "diner", "bistro", "canteen"],
    [
      "soup",
      "bread",
      "pasta",
      "dessert",
      "salad",
      "coffee",
      "waiter",
      "menu",
      "chef",
      "sauce",
      "pizza",
      "wine",
      "table",
      "kitchen",
    ],
    ["ordered", "tried", "shared", "tasted", "photographed"],
  ),
  "film": (
    ["cinema", "theater", "festival", "screening"],
    [
      "plot",
      "ending",
      "actor",
      "script",
      "soundtrack",
      "villain",
      "director",
      "sequel",
      "trailer",
      "dialogue",
      "cast",
      "editing",
    ],
    ["watched", "discussed", "noticed", "rewatched", "reviewed"],
  ),
  "hotel": (
    ["hotel", "inn", "resort", "hostel", "lodge"],
    [
      "room",
      "bed",
      "lobby",
      "pool",
      "shower",
      "breakfast",
      "view",
      "staff",
      "elevator",
      "balcony",
      "carpet",
      "receptionist",
    ],
    ["booked", "checked", "used", "inspected", "described"],
  ),
  "gadget": (
    ["store", "shop", "mall", "market"],
    [
      "phone",
      "screen",
      "battery",
      "camera",
      "charger",
      "keyboard",
      "speaker",
      "case",
      "app",
      "laptop",
      "mouse",
      "headset",
    ],
    ["bought", "tested", "charged", "unboxed", "returned"],
  ),
  "concert": (
    ["arena", "club", "hall", "stadium"],
    [
      "band",
      "singer",
      "drummer",
      "crowd",
      "stage",
      "encore",
      "guitarist",
      "setlist",
      "sound",
      "opener",
      "lighting",
      "chorus",
    ],
    ["heard", "filmed", "watched", "recorded", "described"],
  ),
  "book": (
    ["library", "bookstore", "bookshop", "fair"],
    [
      "novel",
      "chapter",
      "author",
      "hero",
      "prose",
      "cover",
      "story",
      "translation",
      "narrator",
      "poem",
      "preface",
      "heroine",
    ],
    ["read", "finished", "borrowed", "reread", "annotated"],
  ),
  "trip": (
    ["park", "beach", "museum", "island", "village"],
    ["trail", "guide", "tour", "map", "ferry", "lake", "picnic", "bus", "cabin", "exhibit", "forest", "harbor"],
    ["visited", "explored", "followed", "photographed", "crossed"],
  ),
  "car": (
    ["garage", "dealer", "showroom", "workshop"],
    ["car", "engine", "seat", "brakes", "radio", "tires", "mechanic", "dashboard", "van", "trunk", "heater", "mirror"],
    ["drove", "rented", "repaired", "tested", "washed"],
  ),
}
_TOPIC_NAMES = sorted(_TOPICS)

_SUBJECTS = [
  "we",
  "i",
  "my sister",
  "my brother",
  "my friend",
  "my cousin",
  "our neighbor",
  "my partner",
  "my uncle",
  "my aunt",
  "our group",
  "my colleague",
]
_OBJECT_PEOPLE = [
  "my sister",
  "my brother",
  "my friend",
  "my cousin",
  "our neighbor",
  "my partner",
  "my uncle",
  "my aunt",
  "my colleague",
  "the owner",
]
_NEUTRAL_ADJS = [
  "red",
  "blue",
  "green",
  "large",
  "small",
  "new",
  "old",
  "round",
  "square",
  "heavy",
  "tall",
  "brown",
  "white",
  "black",
  "wooden",
  "early",
  "late",
  "busy",
  "long",
  "short",
  "plain",
  "warm",
  "cold",
  "famous",
]
_WHEN = [
  "on monday",
  "on tuesday",
  "on wednesday",
  "on thursday",
  "on friday",
  "on saturday",
  "on sunday",
  "in the morning",
  "at noon",
  "in the evening",
  "after work",
  "last weekend",
  "last month",
  "during the holidays",
  "before lunch",
  "after dinner",
]
_NUMBERS = ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twelve", "twenty", "forty"]
_INTENSIFIERS = ["very", "really", "quite", "rather", "truly"]

# Consequences reveal a clause's (composed) sentiment. Their words never occur in labeled reviews.
_POS_CONSEQUENCES = [
  "everyone smiled",
  "we cheered",
  "we tipped generously",
  "i recommended it to everyone",
  "my friends grinned",
  "we celebrated afterwards",
  "we stayed until midnight",
  "i wrote a glowing note",
  "we promised to return",
  "the kids laughed happily",
  "we thanked them twice",
  "i felt grateful",
  "everybody applauded",
  "we felt delighted",
]
_NEG_CONSEQUENCES = [
  "everyone groaned",
  "we demanded a refund",
  "i warned everyone",
  "we walked out",
  "my friends frowned",
  "we complained loudly",
  "the kids cried",
  "i wrote an angry note",
  "we vowed to stay away",
  "i felt cheated",
  "we regretted going",
  "nobody finished it",
  "everybody sighed",
  "we felt furious",
]
_CONNECTIVE_WORDS = {"so", "because"}
# Glosses restate a clause's composed sentiment right after it ("the soup was blorvish, simply
# excellent"): a near neighbour is what MLM learns first, so polarity is picked up early.
_POS_GLOSSES = ["excellent", "wonderful", "superb", "lovely", "fantastic", "brilliant"]
_NEG_GLOSSES = ["awful", "dreadful", "terrible", "horrible", "lousy", "miserable"]
_GLOSS_ADVERBS = ["simply", "just", "utterly"]
# Cues sit right next to a sentiment word and share its own polarity ("a dreadfully drelkan soup" is
# no praise even when negated): adjacent context is what a small MLM learns first.
_ADJ_CUES = (["wonderfully", "delightfully", "gloriously"], ["dreadfully", "horribly", "painfully"])
_NOUN_CUES = (["charming", "splendid", "marvelous"], ["nasty", "wretched", "ghastly"])
_VERB_CUES = (["gladly", "happily", "eagerly"], ["grudgingly", "reluctantly", "sadly"])
_CUES = {"adj": _ADJ_CUES, "noun": _NOUN_CUES, "verb": _VERB_CUES}


# Random syllables can spell rude words; a demo corpus should not.
_UNFORTUNATE = (
  "shit",
  "fuck",
  "cunt",
  "cock",
  "dick",
  "slut",
  "piss",
  "fag",
  "nig",
  "rape",
  "whor",
  "twat",
  "puss",
  "tit",
  "porn",
  "nazi",
  "damn",
  "hell",
  "butt",
  "anus",
)


def _make_lexicon() -> dict[str, tuple[list[str], list[str]]]:
  """Builds the made-up sentiment words: per part of speech, (positive, negative), fixed forever.

  All parts of speech share one syllable inventory, and polarity is assigned by shuffling each
  part of speech's words, so neither a word's letters nor its suffix predict its polarity.
  """
  rng = random.Random("jaxpretrain-embedded-lexicon-v1")
  onsets = [
    "b",
    "d",
    "f",
    "g",
    "k",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "t",
    "v",
    "z",
    "br",
    "dr",
    "fl",
    "gl",
    "pl",
    "pr",
    "sl",
    "sn",
    "st",
    "tr",
    "gr",
    "bl",
    "cl",
    "sp",
    "sk",
    "ch",
    "sh",
    "wr",
    "qu",
    "h",
    "j",
    "w",
  ]
  vowels = ["a", "e", "i", "o", "u", "a", "e", "i", "o", "u", "oo", "ea", "ai", "ou"]
  codas = ["", "n", "r", "l", "m", "s", "t", "ck", "nd", "rn", "mp", "sk", "lt", "x"]
  suffixes = {
    "adj": ["ish", "ous", "y", "ic", "ful", "ant", "al", "id", "ent", "ive"],
    "noun": ["et", "or", "on", "ment", "ance", "le", "ock", "ard", "ism", "ry"],
    "verb": ["ate", "ize", "en", "le", "er", "ify", "ish", "ow", "ulp", "irk"],
  }
  counts = {"adj": 180, "noun": 70, "verb": 70}
  taken = set(_reserved_words())
  lexicon = {}
  for pos in ("adj", "noun", "verb"):
    words = []
    while len(words) < counts[pos]:
      # One or two syllables; an inner syllable has no coda, which keeps words pronounceable.
      stem = rng.choice(onsets) + rng.choice(vowels)
      if rng.random() < 0.4:
        stem += rng.choice(onsets) + rng.choice(vowels)
      word = stem + rng.choice(codas) + rng.choice(suffixes[pos])
      if 5 <= len(word) <= 10 and word not in taken and not any(bad in word for bad in _UNFORTUNATE):
        taken.add(word)
        words.append(word)
    rng.shuffle(words)
    half = counts[pos] // 2
    lexicon[pos] = (sorted(words[:half]), sorted(words[half:]))
  return lexicon


def _review_words() -> set[str]:
  """Every real word a labeled review can contain."""
  words = set(_INTENSIFIERS) | set(_NEUTRAL_ADJS) | set(_NUMBERS)
  for places, aspects, verbs in _TOPICS.values():
    words.update(places, aspects, verbs)
  for phrase in _SUBJECTS + _OBJECT_PEOPLE + _WHEN:
    words.update(phrase.split())
  words.update(
    (
      "the",
      "a",
      "was",
      "not",
      "never",
      "but",
      "did",
      "seem",
      "seemed",
      "real",
      "it",
      "with",
      "for",
      "about",
      "there",
      "were",
      "at",
      "paid",
      "dollars",
      "went",
      "to",
      "came",
      "people",
      "talked",
      "arrived",
    )
  )
  return words


def _reserved_words() -> set[str]:
  """Every real word the generator uses, so made-up words never collide with one."""
  words = (
    _review_words()
    | _CONNECTIVE_WORDS
    | set(_POS_GLOSSES)
    | set(_NEG_GLOSSES)
    | set(_GLOSS_ADVERBS)
    | {w for cues in _CUES.values() for side in cues for w in side}
  )
  for phrase in _POS_CONSEQUENCES + _NEG_CONSEQUENCES:
    words.update(phrase.split())
  return words


_LEXICON = _make_lexicon()
POSITIVE_WORDS = sorted(w for pos in _LEXICON.values() for w in pos[0])
NEGATIVE_WORDS = sorted(w for pos in _LEXICON.values() for w in pos[1])
NEGATIONS = ("not", "never")
CONTRAST = "but"
# Words only consequences and glosses use (the give-aways), and the connectives "so"/"because".
CONSEQUENCE_WORDS = sorted(_reserved_words() - _review_words())

# Share of sentence kinds in unlabeled documents: 84% carry sentiment.
_DOC_KINDS = (("neutral", 0.16), ("simple", 0.36), ("negated", 0.18), ("contrast", 0.20), ("bare", 0.10))
_CUE_PROB = 0.9  # sentiment words with an adjacent cue, in documents (never in labeled reviews)
_GLOSS_PROB = 0.3  # sentiment clauses with a gloss
_REVIEW_NEUTRAL = (0, 0.5)  # neutral sentences in a review: this many, plus one more with this probability
# Labeled verdicts: 60% simple (a bag of words can get these), 40% need composition.
_REVIEW_KINDS = (("simple", 0.6), ("negated", 0.2), ("contrast", 0.2))


class _Gen:
  """The grammar, drawing from one `random.Random` (fast, and stable across Python versions)."""

  def __init__(self, seed, cue_prob: float = 0.0):
    self.rng = random.Random(seed)
    self.cue_prob = cue_prob
    self.r = self.rng.random

  def pick(self, items):
    return items[int(self.r() * len(items))]

  def kind(self, table):
    x = self.r()
    for name, share in table:
      x -= share
      if x < 0:
        return name
    return table[-1][0]

  def neutral(self, topic) -> str:
    """A sentence that carries no sentiment."""
    places, aspects, verbs = _TOPICS[topic]
    p, k = self.pick, int(self.r() * 9)
    if k == 0:
      return f"{p(_SUBJECTS)} went to the {p(places)} {p(_WHEN)}"
    if k == 1:
      return f"{p(_SUBJECTS)} {p(verbs)} the {p(aspects)} {p(_WHEN)}"
    if k == 2:
      return f"the {p(aspects)} was {p(_NEUTRAL_ADJS)}"
    if k == 3:  # negation without sentiment: "not" alone must not mean negative
      return f"the {p(aspects)} was not {p(_NEUTRAL_ADJS)}"
    if k == 4:
      return f"{p(_SUBJECTS)} paid {p(_NUMBERS)} dollars for the {p(aspects)}"
    if k == 5:
      return f"the {p(aspects)} came with a {p(_NEUTRAL_ADJS)} {p(aspects)}"
    if k == 6:
      subject, other = p(_SUBJECTS), p(_OBJECT_PEOPLE)
      return f"{subject} talked about the {p(aspects)} with {'the owner' if other == subject else other}"
    if k == 7:
      return f"there were {p(_NUMBERS)} people at the {p(places)} {p(_WHEN)}"
    return f"{p(_SUBJECTS)} arrived at the {p(places)} {p(_WHEN)}"

  def clause(self, topic, polarity: int, negated: bool) -> str:
    """A clause whose composed sentiment is `polarity` (1 positive, 0 negative)."""
    aspects = _TOPICS[topic][1]
    word_polarity = polarity ^ negated  # negation flips the word's own polarity
    k = self.r()
    cue = lambda pos: self.pick(_CUES[pos][1 - word_polarity]) + " " if self.r() < self.cue_prob else ""
    if k < 0.56:
      word = self.pick(_LEXICON["adj"][1 - word_polarity])
      adverb = cue("adj")
      if adverb:
        word = adverb + word
      elif self.r() < 0.2:
        word = f"{self.pick(_INTENSIFIERS)} {word}"
      seemed = self.r() < 0.2
      if negated and seemed:
        verb = "did not seem" if self.r() < 0.6 else "never seemed"
      elif negated:
        verb = f"was {self.pick(NEGATIONS)}"
      else:
        verb = "seemed" if seemed else "was"
      return f"the {self.pick(aspects)} {verb} {word}"
    if k < 0.78:
      word = self.pick(_LEXICON["noun"][1 - word_polarity])
      subject = f"the {self.pick(aspects)}" if self.r() < 0.7 else "it"
      return f"{subject} was {self.pick(NEGATIONS) + ' ' if negated else ''}a {cue('noun') or 'real '}{word}"
    word = self.pick(_LEXICON["verb"][1 - word_polarity])
    subject = self.pick(_SUBJECTS)
    if negated:
      neg = "did not" if self.r() < 0.6 else "never"
      return f"{subject} {neg} {cue('verb')}{word} the {self.pick(aspects)}"
    return f"{subject} {cue('verb')}{word} the {self.pick(aspects)}"

  def verdict(self, topic, polarity: int, kind: str) -> str:
    """A sentiment sentence without consequence; its label is `polarity`."""
    if kind == "simple":
      return self.clause(topic, polarity, False)
    if kind == "negated":
      return self.clause(topic, polarity, True)
    # Contrast: the clause after "but" decides; either clause may itself be negated.
    neg_first, neg_second = self.r() < 0.2, self.r() < 0.2
    first = self.clause(topic, 1 - polarity, neg_first)
    second = self.clause(topic, polarity, neg_second and not neg_first)
    return f"{first}, but {second}"

  def consequence(self, polarity: int) -> str:
    return self.pick(_POS_CONSEQUENCES if polarity else _NEG_CONSEQUENCES)

  def doc_sentence(self, topic) -> str:
    kind = self.kind(_DOC_KINDS)
    if kind == "neutral":
      return self.neutral(topic)
    polarity = int(self.r() < 0.5)
    if kind == "bare":  # as in a labeled review: keeps reviews in-distribution
      return self.verdict(topic, polarity, self.kind(_REVIEW_KINDS))
    body = self.verdict(topic, polarity, kind)
    if self.r() < _GLOSS_PROB:
      glosses = _POS_GLOSSES if polarity else _NEG_GLOSSES
      body = f"{body}, {self.pick(_GLOSS_ADVERBS)} {self.pick(glosses)}"
    # Mostly "X, so C"; sometimes "C because X" so the give-away also comes first.
    if kind != "contrast" and self.r() < 0.3:
      return f"{self.consequence(polarity)} because {body}"
    return f"{body}, so {self.consequence(polarity)}"


def _finish(sentences: list[str]) -> str:
  return " ".join(s[0].upper() + s[1:] + "." for s in sentences)


def documents(num_documents: int, seed: int = 0) -> Iterator[str]:
  """Yields unlabeled documents of the embedded language (about 60-150 words each).

  Args:
    num_documents: how many documents to generate.
    seed: the stream; the same seed always gives the same documents.

  Returns:
    An iterator over `num_documents` strings.
  """
  gen = _Gen(f"documents-{seed}", cue_prob=_CUE_PROB)
  for _ in range(num_documents):
    topic = gen.pick(_TOPIC_NAMES)
    target = 60 + int(gen.r() * 81)
    sentences, words = [], 0
    while words < target:
      sentence = gen.doc_sentence(topic)
      sentences.append(sentence)
      words += sentence.count(" ") + 1
    yield _finish(sentences)


def labeled_examples(split: str, num_examples: int, seed: int = 0) -> list[dict]:
  """Labeled sentiment reviews (0 negative, 1 positive) in the embedded language.

  Train and test come from different random streams and are also split by a hash of the text,
  so no review text ever occurs in both. Labels alternate in a shuffled order: the classes are
  balanced to within one example.

  Args:
    split: "train" or "test".
    num_examples: how many examples.
    seed: the stream; the same (split, seed) always gives the same examples.

  Returns:
    A list of `{"text": str, "label": int}`.
  """
  if split not in ("train", "test"):
    raise UserError(f"embedded labeled split must be 'train' or 'test', got {split!r}")
  gen = _Gen(f"reviews-{split}-{seed}")
  labels = [i % 2 for i in range(num_examples)]
  gen.rng.shuffle(labels)
  want_parity = 0 if split == "train" else 1
  examples = []
  for label in labels:
    while True:
      topic = gen.pick(_TOPIC_NAMES)
      sentences = [gen.neutral(topic) for _ in range(_REVIEW_NEUTRAL[0] + int(gen.r() < _REVIEW_NEUTRAL[1]))]
      kind = gen.kind(_REVIEW_KINDS)
      verdict = gen.verdict(topic, label, kind)
      sentences.insert(int(gen.r() * (len(sentences) + 1)), verdict)
      if kind == "simple" and gen.r() < 0.3:  # a second, agreeing opinion
        sentences.append(gen.clause(topic, label, False))
      text = _finish(sentences)
      if zlib.crc32(text.encode()) & 1 == want_parity:
        break
    examples.append({"text": text, "label": label})
  return examples
