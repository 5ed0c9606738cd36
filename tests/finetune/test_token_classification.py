"""Token classification: word-piece label alignment and seqeval-style entity F1 computed on device."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpretrain.data.finetune.features import align_word_labels, encode_token_classification, label_names
from jaxpretrain.data.tokenizer import Tokenizer
from jaxpretrain.tasks.token_classification import IGNORE, entity_counts, entity_scores, tag_scheme

TAGS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC")
counts = jax.jit(functools.partial(entity_counts, label_names=TAGS))  # as inside the jitted eval step


def reference_entities(tags):
  """seqeval's get_entities (default, non-strict IOB): a set of (type, first, last)."""
  chunks, prev_tag, prev_type, begin = set(), "O", "", 0
  for i, tag_name in enumerate(list(tags) + ["O"]):
    tag, kind = (tag_name[0], tag_name[2:]) if tag_name != "O" else ("O", "")
    if prev_tag != "O" and (tag in ("B", "O") or prev_type != kind):
      chunks.add((prev_type, begin, i - 1))
    if tag != "O" and (tag == "B" or prev_tag == "O" or prev_type != kind):
      begin = i
    prev_tag, prev_type = tag, kind
  return chunks


def _counts(pred, gold):
  out = counts(jnp.asarray([pred]), jnp.asarray([gold]))
  return tuple(int(out[k]) for k in ("entity_tp", "entity_pred", "entity_gold"))


def test_hand_made_entity_counts():
  # B-PER I-PER | B-LOC ; prediction gets the PER span right, the LOC type wrong.
  assert _counts([1, 2, 0, 3], [1, 2, 0, 3]) == (2, 2, 2)
  assert _counts([1, 2, 0, 1], [1, 2, 0, 3]) == (1, 2, 2)
  assert _counts([1, 0, 0, 3], [1, 2, 0, 3]) == (1, 2, 2)  # PER too short: wrong
  assert _counts([1, 2, 2, 3], [1, 2, 0, 3]) == (1, 2, 2)  # PER too long: wrong
  assert _counts([2, 2, 0, 0], [1, 2, 0, 0]) == (1, 1, 1)  # I- after O starts an entity
  assert _counts([1, 1, 0, 0], [1, 2, 0, 0]) == (0, 2, 1)  # B- B-: two entities
  # -100 positions (later word pieces) are skipped: the entity continues across them.
  assert _counts([1, 0, 2, 0], [1, IGNORE, 2, 0]) == (1, 1, 1)
  assert _counts([1, 0, 0, 0], [1, IGNORE, 2, 0]) == (0, 1, 1)


def test_entity_counts_match_seqeval_rules_on_random_sequences():
  rs = np.random.RandomState(0)
  pred, gold = rs.randint(0, 5, (200, 12)), rs.randint(0, 5, (200, 12))
  gold[rs.rand(200, 12) < 0.3] = IGNORE
  tp = n_pred = n_gold = 0
  for p, g in zip(pred, gold):
    keep = g != IGNORE
    want, got = reference_entities([TAGS[t] for t in g[keep]]), reference_entities([TAGS[t] for t in p[keep]])
    tp, n_pred, n_gold = tp + len(want & got), n_pred + len(got), n_gold + len(want)
  out = counts(jnp.asarray(pred), jnp.asarray(gold))
  assert (float(out["entity_tp"]), float(out["entity_pred"]), float(out["entity_gold"])) == (tp, n_pred, n_gold)
  scores = entity_scores(out["entity_tp"], out["entity_pred"], out["entity_gold"])
  assert float(scores["f1"]) == pytest.approx(2 * tp / (n_pred + n_gold))


def test_tag_scheme():
  begin, types = tag_scheme(["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "MISC"])
  assert begin.tolist() == [False, True, False, True, False, False]
  assert types.tolist() == [-1, 0, 0, 1, 1, 2]


def test_alignment_labels_only_the_first_piece():
  assert align_word_labels([None, 0, 0, 1, 2, 2, 2, None, None], [3, 0, 1]) == [
    IGNORE,
    3,
    IGNORE,
    0,
    1,
    IGNORE,
    IGNORE,
    IGNORE,
    IGNORE,
  ]


def test_encoded_labels_sit_on_each_words_first_piece():
  tokenizer = Tokenizer.train_wordpiece(["the cat sat on the mat"] * 20 + ["xylophonic"], vocab_size=60)
  records = [{"tokens": ["the", "xylophonic", "cat"], "tags": ["O", "B-PER", "I-PER"], "where": "t:1"}]
  names = label_names(["O", "B-PER", "I-PER"])
  assert names == ["O", "B-PER", "I-PER"]
  out = encode_token_classification(records, tokenizer, 16, names)
  pieces = tokenizer.hf.convert_ids_to_tokens(out["input_ids"][0].tolist())
  labels = out["labels"][0].tolist()
  xylo = pieces.index("the") + 1
  assert len([p for p in pieces if p.startswith("##")]) >= 1  # the rare word is split
  assert labels[0] == IGNORE and labels[pieces.index("the")] == 0  # [CLS] ignored, "the" is O
  assert labels[xylo] == 1 and pieces[xylo + 1].startswith("##") and labels[xylo + 1] == IGNORE
  assert labels[pieces.index("cat")] == 2 and labels[pieces.index("[SEP]")] == IGNORE
