"""The embedded language: determinism, size, and the properties the pretraining demo relies on."""

import collections
import re
import time

import pytest

from jaxpretrain.data.readers import embedded
from jaxpretrain.errors import UserError

POLARITY = {**{w: 1 for w in embedded.POSITIVE_WORDS}, **{w: 0 for w in embedded.NEGATIVE_WORDS}}
POS_CONSEQ = {
  "smiled",
  "cheered",
  "tipped",
  "recommended",
  "grinned",
  "celebrated",
  "midnight",
  "glowing",
  "promised",
  "laughed",
  "thanked",
  "grateful",
  "applauded",
  "delighted",
}
NEG_CONSEQ = {
  "groaned",
  "refund",
  "warned",
  "walked",
  "frowned",
  "complained",
  "cried",
  "angry",
  "vowed",
  "cheated",
  "regretted",
  "nobody",
  "sighed",
  "furious",
}


def words(text):
  return re.findall(r"[a-z]+", text.lower())


def clause_polarity(clause):
  """Composed polarity of a clause (None if it has no sentiment word): word XOR negation."""
  ws = words(clause)
  found = [POLARITY[w] for w in ws if w in POLARITY]
  if not found:
    return None
  assert len(found) == 1, clause
  return found[0] ^ bool({"not", "never"} & set(ws))


def sentence_polarity(sentence):
  """Composition oracle: the clause after "but" decides."""
  return clause_polarity(sentence.split(", but ")[-1]) if ", but " in sentence else (clause_polarity(sentence))


def sentences(text):
  return [s for s in re.split(r"\.\s*", text) if s]


def test_documents_deterministic_and_seeded():
  assert list(embedded.documents(30, seed=1)) == list(embedded.documents(30, seed=1))
  assert list(embedded.documents(30, seed=1)) != list(embedded.documents(30, seed=2))


def test_forty_thousand_documents_hold_two_million_words_quickly():
  start = time.perf_counter()
  lengths = [len(d.split()) for d in embedded.documents(40000)]
  seconds = time.perf_counter() - start
  assert sum(lengths) >= 2_000_000
  assert seconds < 30, seconds  # ~1-2 s on an idle 2-core machine; loose for shared CI
  assert min(lengths) >= 60 and max(lengths) <= 200


def test_lexicon_is_large_disjoint_and_made_up():
  assert len(embedded.POSITIVE_WORDS) >= 150 and len(embedded.NEGATIVE_WORDS) >= 150
  assert not set(embedded.POSITIVE_WORDS) & set(embedded.NEGATIVE_WORDS)
  real = embedded._review_words() | set(embedded.CONSEQUENCE_WORDS)
  assert not set(POLARITY) & real


def test_polarity_is_not_in_the_spelling():
  # No ending (last 2 letters) that many words share is mostly one polarity.
  by_ending = collections.defaultdict(list)
  for word, polarity in POLARITY.items():
    by_ending[word[-2:]].append(polarity)
  for ending, polarities in by_ending.items():
    if len(polarities) >= 15:
      share = sum(polarities) / len(polarities)
      assert 0.2 <= share <= 0.8, (ending, share)


def test_consequences_and_glosses_follow_the_composed_sentiment():
  pos_gloss, neg_gloss = set(embedded._POS_GLOSSES), set(embedded._NEG_GLOSSES)
  checked = glossed = 0
  for doc in embedded.documents(300, seed=4):
    for sentence in sentences(doc):
      ws = set(words(sentence))
      conseq = 1 if ws & POS_CONSEQ else 0 if ws & NEG_CONSEQ else None
      gloss = 1 if ws & pos_gloss else 0 if ws & neg_gloss else None
      if conseq is None and gloss is None:
        continue
      body = sentence.split(", so ")[0] if ", so " in sentence else (sentence.split(" because ")[-1])
      polarity = sentence_polarity(body)
      assert polarity is not None and conseq in (None, polarity) and gloss in (None, polarity), sentence
      checked += 1
      glossed += gloss is not None
  assert checked > 1000 and glossed > 500


def test_cues_sit_next_to_sentiment_words_and_share_their_polarity():
  cues = {
    w: polarity for table in embedded._CUES.values() for polarity, side in ((1, table[0]), (0, table[1])) for w in side
  }
  mentions = cued = 0
  for doc in embedded.documents(300, seed=6):
    ws = words(doc)
    for before, word in zip(ws, ws[1:]):
      if word in POLARITY:
        mentions += 1
        if before in cues:
          cued += 1
          assert cues[before] == POLARITY[word], (before, word)
  assert 0.8 <= cued / mentions <= 0.95, cued / mentions
  assert set(cues) <= set(embedded.CONSEQUENCE_WORDS)  # never in a labeled review
  assert not set(cues) & set(embedded._POS_GLOSSES + embedded._NEG_GLOSSES)


def test_unlabeled_text_teaches_negation_and_contrast():
  text = " ".join(embedded.documents(300, seed=5))
  composed = re.findall(r"(?:not|never) [a-z ]+, so |, but [a-z ]+, so ", text.lower())
  assert len(composed) > 300


def test_labeled_splits_are_deterministic_disjoint_and_balanced():
  train = embedded.labeled_examples("train", 2000, seed=0)
  test = embedded.labeled_examples("test", 2000, seed=0)
  assert train == embedded.labeled_examples("train", 2000, seed=0)
  assert train != embedded.labeled_examples("train", 2000, seed=1)
  assert not {e["text"] for e in train} & {e["text"] for e in test}
  assert not ({e["text"] for e in embedded.labeled_examples("train", 500, seed=1)} & {e["text"] for e in test})
  for split in (train, test):
    assert abs(sum(e["label"] for e in split) - len(split) / 2) <= 1
  assert embedded.LABEL_NAMES == ["negative", "positive"]
  with pytest.raises(UserError, match="split"):
    embedded.labeled_examples("validation", 3)


def test_reviews_are_short_and_free_of_give_aways():
  give_aways = set(embedded.CONSEQUENCE_WORDS)
  assert {"so", "because", "smiled", "refund"} <= give_aways
  for example in embedded.labeled_examples("train", 2000):
    ws = words(example["text"])
    assert len(example["text"].split()) <= 45
    assert not set(ws) & give_aways, example["text"]


def test_labels_need_composition_that_a_bag_of_words_lacks():
  examples = embedded.labeled_examples("test", 2000)
  oracle_right = bow_right = needs_composition = 0
  for example in examples:
    polarities = [p for p in map(sentence_polarity, sentences(example["text"])) if p is not None]
    assert polarities and len(set(polarities)) == 1, example["text"]  # one verdict
    oracle_right += polarities[0] == example["label"]
    # The best a bag of words can do, even knowing every word's polarity: count them.
    votes = sum(1 if POLARITY[w] else -1 for w in words(example["text"]) if w in POLARITY)
    bow_right += 1.0 if (votes > 0) == bool(example["label"]) and votes else 0.5 if not votes else 0
    ws = set(words(example["text"]))
    needs_composition += bool(ws & {"but"}) or any(
      clause_polarity(s) is not None and {"not", "never"} & set(words(s)) for s in sentences(example["text"])
    )
  n = len(examples)
  assert oracle_right == n
  assert 0.35 <= needs_composition / n <= 0.5, needs_composition / n
  assert bow_right / n < 0.8, bow_right / n
