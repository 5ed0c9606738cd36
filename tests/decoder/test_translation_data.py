"""The embedded translation task, pair sources (embedded, .jsonl, tfds) and `source <sep> target` rows."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpretrain.data.finetune import translation
from jaxpretrain.data.readers import embedded
from jaxpretrain.data.readers import embedded_translation as et
from jaxpretrain.data.readers.pairs import read_pairs
from jaxpretrain.data.tokenizer import Tokenizer
from jaxpretrain.errors import UserError
from jaxpretrain.tasks.translation import Translation
from tests.decoder.helpers import TINY_GPT, random_params


def _b(words: str, end: str = ".") -> str:
  """The Embedded-B text of space-separated source words in the given (already reordered) order."""
  text = " ".join(et.LEXICON[w] if w in et.LEXICON else w for w in words.split()).replace(" ,", ",")
  return text[:1].upper() + text[1:] + end


@pytest.mark.parametrize(
  "source, reordered",
  [
    ("My friend watched the plot on monday.", "my friend the plot on monday watched"),  # verb-final
    ("The soup came with a green salad.", "the soup with a salad green came"),  # adjective after noun
    ("The bread was not round, so we cheered.", "the bread round was not , so we cheered"),
    ("It was not a real {noun}.", "it a {noun} real was not"),
    (
      "I never {verb} the {aspect} because the {aspect} did not seem very {adj}.",
      "i the {aspect} never {verb} because the {aspect} very {adj} did not seem",
    ),
  ],
)
def test_translation_reorders_then_swaps_every_word(source, reordered):
  words = {
    "noun": et._LEXICON["noun"][0][0],
    "verb": et._LEXICON["verb"][1][0],
    "adj": et._LEXICON["adj"][0][3],
    "aspect": "waiter",
  }
  assert et.translate_sentence(source.format(**words)) == _b(reordered.format(**words))


def test_lexicon_is_a_new_vocabulary():
  source_words = set(et._source_words())
  targets = [t for w, t in et.LEXICON.items() if w != "an"]
  assert len(set(targets)) == len(targets) and et.LEXICON["an"] == et.LEXICON["a"]  # one-to-one but a/an
  assert not set(targets) & source_words  # nothing translates by copying
  document = next(embedded.documents(1, seed=5))
  assert all(w in et.LEXICON for w in document.lower().replace(",", " ").replace(".", " ").split())


def test_pairs_are_deterministic_distinct_and_split_by_sentence():
  train, test = et.pairs("train", 300), et.pairs("test", 60)
  assert et.pairs("train", 300) == train and et.pairs("train", 300, seed=1) != train
  assert len({p["target"] for p in train}) == 300 and not {p["target"] for p in train} & {p["target"] for p in test}
  assert all(p["source"] == et.translate_sentence(p["target"]) for p in train)
  with pytest.raises(UserError, match="split must be 'train' or 'test'"):
    et.pairs("dev", 1)


def test_jsonl_pairs_with_named_fields_and_errors(tmp_path):
  path = tmp_path / "pairs.jsonl"
  path.write_text(
    json.dumps({"source": "a b", "target": "c d"})
    + "\n\n"
    + json.dumps({"translation": {"de": "ein haus", "en": "a house"}})
    + "\n"
  )
  with pytest.raises(
    UserError,
    match=r"pairs.jsonl:3: no 'source' field \(set data.source_field / "
    r"data.target_field; it has de, en\)$",
  ):
    read_pairs(str(path), "train")
  pairs = read_pairs(str(path), "train", limit=1)
  assert pairs == [{"source": "a b", "target": "c d", "where": f"{path}:1"}]
  path.write_text(json.dumps({"translation": {"de": "ein haus", "en": "a house"}}) + "\n")
  assert read_pairs(str(path), "train", source_field="en", target_field="de")[0]["target"] == "ein haus"
  path.write_text(json.dumps({"source": 3, "target": "x"}) + "\n")
  with pytest.raises(UserError, match=r":1: field 'source' is int, not text$"):
    read_pairs(str(path), "train")
  with pytest.raises(UserError, match="translation data file not found"):
    read_pairs(str(tmp_path / "missing.jsonl"), "train")


def test_tfds_translation_pairs_use_the_supervised_keys():
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=5, policy=tfds.testing.MockPolicy.USE_CODE):
    pairs = read_pairs("tfds:ted_hrlr_translate/pt_to_en", "train")
    source = tfds.data_source("ted_hrlr_translate/pt_to_en", split="train")
    assert [(p["source"], p["target"]) for p in pairs] == [(r["pt"], r["en"]) for r in (source[i] for i in range(5))]
    assert len(read_pairs("tfds:ted_hrlr_translate/pt_to_en", "eval", limit=3)) == 3
    flipped = read_pairs("tfds:ted_hrlr_translate/pt_to_en", "train", source_field="en", target_field="pt")
    assert [(p["target"], p["source"]) for p in flipped] == [(p["source"], p["target"]) for p in pairs]
    with pytest.raises(UserError, match="^unknown tfds dataset 'no_such_pairs'"):
      read_pairs("tfds:no_such_pairs", "train")


@pytest.fixture(scope="module")
def tokenizer():
  return Tokenizer.train_wordpiece([p["source"] + " " + p["target"] for p in et.pairs("train", 200)], 300)


def test_rows_are_source_sep_target_eos_with_the_loss_on_the_target(tokenizer):
  pairs = et.pairs("train", 20)
  arrays, truncated = translation.encode_pairs(pairs, tokenizer, 96)
  ids = tokenizer.special_ids
  assert truncated == 0
  for row, pair in enumerate(pairs):
    source, target = tokenizer.encode_batch([pair["source"], pair["target"]])
    expected = [ids["cls"], *source, ids["sep"], *target, ids["sep"]]
    n = len(expected)
    assert arrays["input_ids"][row, :n].tolist() == expected and (arrays["input_ids"][row, n:] == ids["pad"]).all()
    assert arrays["attention_mask"][row].tolist() == [1] * n + [0] * (96 - n)
    assert arrays["loss_mask"][row].tolist() == [0] * (len(source) + 2) + [1] * (len(target) + 1) + [0] * (96 - n)
  short, truncated = translation.encode_pairs(pairs, tokenizer, 16)
  assert truncated == len(pairs) and (short["attention_mask"].sum(1) == 16).all()
  assert (short["input_ids"][:, -1] == ids["sep"]).all() and (short["loss_mask"].sum(1) >= 2).all()
  prompts = translation.prompts(pairs[:2], tokenizer, 96)
  assert prompts[0] == arrays["input_ids"][0, : prompts[0].index(ids["sep"]) + 1].tolist()


def test_translation_loss_counts_target_tokens_of_real_rows_only(tokenizer):
  task = Translation(TINY_GPT)
  params = random_params(task.model)
  arrays, _ = translation.encode_pairs(et.pairs("train", 4), tokenizer, 48)
  arrays = {k: np.minimum(v, TINY_GPT.vocab_size - 1) for k, v in arrays.items()}
  batch = dict({k: jnp.asarray(v) for k, v in arrays.items()}, weight=jnp.array([1.0, 1.0, 1.0, 0.0]))
  loss = jax.jit(lambda b: task.loss(params, b, jax.random.PRNGKey(0), deterministic=True)[1])
  aux = loss(batch)
  assert float(aux["weight"]) == arrays["loss_mask"][:3].sum()  # target + EOS of the three real rows
  source_changed = dict(batch, input_ids=batch["input_ids"].at[:, 1].set(7))
  target_changed = dict(batch, input_ids=jnp.where(batch["loss_mask"] == 1, 7, batch["input_ids"]))
  padding_row_changed = dict(batch, input_ids=batch["input_ids"].at[3].set(7))
  assert float(loss(source_changed)["loss_sum"]) != float(aux["loss_sum"])  # the source is context ...
  assert float(loss(target_changed)["loss_sum"]) != float(aux["loss_sum"])  # ... the target is scored
  assert float(loss(padding_row_changed)["loss_sum"]) == float(aux["loss_sum"])


def test_bleu_and_exact_match_score_the_generated_text(monkeypatch, tokenizer):
  from jaxpretrain import config as config_lib
  from jaxpretrain.tasks import decoding
  from jaxpretrain.tasks.translation import translation_scores

  config = config_lib.load("translate_tiny")
  config.data.eval_examples = 8
  pairs, _ = translation.read(config, "eval")
  targets = tokenizer.encode_batch([p["target"] for p in pairs])
  prompts = translation.prompts(pairs, tokenizer, config.data.seq_len)
  outputs = [(t, True) for t in targets]

  def fake_complete(params, model_config, given, *, max_new_tokens, prompt_len, **kw):
    assert given == prompts and prompt_len == max(map(len, prompts)) and max_new_tokens == 128 - prompt_len
    assert kw["eos_id"] == tokenizer.special_ids["sep"]
    return outputs

  monkeypatch.setattr(decoding, "complete", fake_complete)
  perfect = translation_scores(config, None, TINY_GPT, tokenizer)
  assert perfect["bleu"] == 100.0 and perfect["exact_match"] == 1.0
  assert perfect["samples"][0]["translation"] == perfect["samples"][0]["reference"] == pairs[0]["target"].lower()
  outputs[:] = [(t[: len(t) // 2] if i % 2 else t, True) for i, t in enumerate(targets)]  # every other one cut short
  half = translation_scores(config, None, TINY_GPT, tokenizer)
  assert half["exact_match"] == 0.5 and 0 < half["bleu"] < 100
