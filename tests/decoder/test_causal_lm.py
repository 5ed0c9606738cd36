"""Causal LM: packed == unpacked, no attention across documents, gpt packing, training, perplexity."""

import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpretrain import cli
from jaxpretrain.data.pretrain import loader, prepare
from jaxpretrain.data.tokenizer import Tokenizer
from jaxpretrain.errors import UserError
from jaxpretrain.tasks.causal_lm import CausalLM
from jaxpretrain.train import loop
from jaxpretrain.train.metrics import read_metrics
from tests.decoder.helpers import TINY_GPT, random_params, tiny_gpt_config

DOCS = [[2, 11, 12, 13, 3], [2, 21, 22, 23, 24, 25, 3], [2, 31, 32, 3]]


def _packed_row(docs, length):
  ids = np.zeros((1, length), np.int32)
  segments = np.zeros((1, length), np.int32)
  start = 0
  for s, doc in enumerate(docs, 1):
    ids[0, start : start + len(doc)], segments[0, start : start + len(doc)] = doc, s
    start += len(doc)
  return {"input_ids": jnp.asarray(ids), "segment_ids": jnp.asarray(segments)}


def test_packed_row_loss_equals_its_documents_alone():
  task = CausalLM(TINY_GPT)
  params = random_params(task.model)
  loss = jax.jit(lambda p, b: task.loss(p, b, jax.random.PRNGKey(0), deterministic=True))
  packed_sum, packed = loss(params, _packed_row(DOCS, 20))
  alone = [loss(params, _packed_row([doc], 20))[1] for doc in DOCS]  # one document, then padding
  assert float(packed["weight"]) == sum(len(d) - 1 for d in DOCS) == sum(float(a["weight"]) for a in alone)
  np.testing.assert_allclose(float(packed_sum), sum(float(a["loss_sum"]) for a in alone), rtol=1e-5)
  metrics = task.metrics(packed)
  np.testing.assert_allclose(float(metrics["perplexity"]), math.exp(float(metrics["loss"])), rtol=1e-6)


def test_no_token_attends_across_documents():
  task = CausalLM(TINY_GPT)
  params = random_params(task.model)
  batch = _packed_row(DOCS, 20)
  changed = dict(batch, input_ids=batch["input_ids"].at[0, 1:4].set(jnp.array([40, 41, 42])))
  logits = jax.jit(lambda p, x: task.logits(p, x))
  a, b = (np.asarray(logits(params, x)) for x in (batch, changed))
  assert np.abs(a[0, 1:5] - b[0, 1:5]).max() > 1e-3  # document 1 itself changed
  np.testing.assert_array_equal(a[0, 5:], b[0, 5:])  # documents 2, 3 and the padding did not


def _rows(prepared_dir, split="train"):
  ds = loader.make_dataset(
    prepared_dir, split, global_batch_size=1, seed=0, shuffle=False, repeat=False, drop_remainder=False
  )
  batches = list(ds)
  return (np.concatenate([b["input_ids"] for b in batches]), np.concatenate([b["segment_ids"] for b in batches]))


def test_gpt_packing_holds_each_document_between_bos_and_eos(tmp_path):
  texts = [
    "alpha beta gamma delta",
    "one two",
    "a much longer document with many words that cannot fit in one row at all",
    "short",
    "the last one",
  ] * 3
  (tmp_path / "corpus.txt").write_text("\n".join(texts) + "\n")
  out = str(tmp_path / "data")
  prepare.prepare(str(tmp_path / "corpus.txt"), out, seq_len=12, vocab_size=120, eval_fraction=0.0, packing="gpt")
  assert prepare.load_metadata(out)["options"]["packing"] == "gpt"
  tokenizer = Tokenizer.load(os.path.join(out, "tokenizer"))
  bos, eos, pad = (tokenizer.special_ids[k] for k in ("cls", "sep", "pad"))
  ids, segments = _rows(out)
  stream, continuations = [], 0
  for row_ids, row_segments in zip(ids, segments):
    used = int((row_segments > 0).sum())
    assert (np.diff(row_segments[:used]) >= 0).all() and (row_ids[used:] == pad).all()
    assert used >= 11  # rows are filled (at most one slot left)
    for s in range(1, row_segments.max() + 1):
      piece = row_ids[row_segments == s].tolist()
      continuations += piece[0] != bos
      stream += piece
  assert continuations > 0  # the long document continued across rows
  assert stream == [t for doc in tokenizer.encode_batch(texts) for t in [bos, *doc, eos]]


def test_mlm_packed_data_is_refused_for_causal_lm(tmp_path, tiny_prepared):
  with pytest.raises(
    UserError,
    match=r"^prepared data in .* is packed for bert \(data.packing\), this run needs "
    r"gpt; use another data.prepared_dir$",
  ):
    loop.run(tiny_gpt_config(tiny_prepared), str(tmp_path / "run"))


def test_pretraining_lowers_the_loss_and_reports_perplexity(gpt_run, capsys):
  workdir, summary = gpt_run
  rows = read_metrics(workdir)
  train = [r for r in rows if "split" not in r]
  assert train[-1]["loss"] < train[0]["loss"] - 0.5 and train[0]["loss"] < math.log(512) + 0.1
  final_eval = [r for r in rows if r.get("split") == "eval"][-1]
  assert final_eval["perplexity"] == pytest.approx(math.exp(final_eval["loss"]), rel=1e-5)
  assert cli.main(["evaluate", f"--workdir={workdir}"]) == 0
  capsys.readouterr()
  with open(os.path.join(workdir, "eval.json")) as f:
    result = json.load(f)
  assert result["step"] == 40 and result["checkpoint"] == "latest"
  # The same eval batches, the same checkpoint: evaluate reproduces the run's final evaluation.
  assert result["loss"] == pytest.approx(summary["eval"]["loss"], rel=1e-5)
  assert result["perplexity"] == pytest.approx(math.exp(result["loss"]), rel=1e-5)


def test_generate_cli_is_deterministic_when_greedy(gpt_run, capsys):
  workdir, _ = gpt_run
  args = [
    "generate",
    f"--workdir={workdir}",
    "--prompt=the soup was",
    "--prompt=we went to the",
    "--temperature=0",
    "--max_new_tokens=6",
  ]
  assert cli.main(args) == 0
  first = json.loads(capsys.readouterr().out)
  assert cli.main(args) == 0
  assert json.loads(capsys.readouterr().out) == first
  assert first["step"] == 40 and [c["prompt"] for c in first["completions"]] == ["the soup was", "we went to the"]
  for completion in first["completions"]:
    assert 1 <= completion["new_tokens"] <= 6 and completion["completion"].strip()
  assert cli.main([*args[:4], "--temperature=1", "--top_k=5", "--seed=1", "--max_new_tokens=6"]) == 0
  assert len(json.loads(capsys.readouterr().out)["completions"]) == 2


@pytest.mark.parametrize(
  "flags, message",
  [
    (["--prompt=a", "--max_new_tokens=0"], "--max_new_tokens must be positive, got 0"),
    (["--prompt=a", "--top_p=0"], r"--top_p must be in \(0, 1\], got 0.0"),
    (["--prompt=a", "--max_new_tokens=70"], r"plus max_new_tokens=70 exceeds the model's 64 positions"),
    ([], "give at least one --prompt"),
  ],
)
def test_generate_errors_are_one_line(gpt_run, capsys, flags, message):
  import re

  assert cli.main(["generate", f"--workdir={gpt_run[0]}", *flags]) == 2
  err = capsys.readouterr().err
  assert len(err.strip().splitlines()) == 1 and re.search(message, err), err


def test_generate_refuses_a_bidirectional_run(gpt_run, tmp_path, capsys):
  with open(os.path.join(gpt_run[0], "config.json")) as f:
    config = json.load(f)
  config["model"]["causal"] = False
  (tmp_path / "config.json").write_text(json.dumps(config))
  assert cli.main(["generate", f"--workdir={tmp_path}", "--prompt=a"]) == 2
  assert "generate needs a causal LM" in capsys.readouterr().err


def test_causal_lm_needs_a_causal_model(tmp_path, gpt_prepared):
  with pytest.raises(UserError, match="^task.name=causal_lm needs a decoder: set model.causal=true$"):
    loop.run(tiny_gpt_config(gpt_prepared, **{"model.causal": False}), str(tmp_path / "run"))
