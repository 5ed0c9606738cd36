"""configs/gpt_tiny.py trains a GPT-2 style byte-level BPE: <|endoftext|> rows, exact round trips, spaced output."""

import json
import os

import numpy as np
import pytest

from jaxpretrain import cli
from jaxpretrain.data.pretrain import loader, prepare
from jaxpretrain.data.tokenizer import Tokenizer
from jaxpretrain.errors import UserError
from jaxpretrain.train import loop
from tests.decoder.helpers import tiny_gpt_config

ROUND_TRIP = [
  "the soup was green.",
  "   leading spaces, a tab\tand a newline\n",
  " Café naïve 東京 straße 😀 — “quoted” ½",
]


@pytest.fixture(scope="module")
def bpe_run(tmp_path_factory):
  """(workdir, summary) of gpt_tiny (auto → byte-level BPE) shrunk to a 1-layer, 32-wide decoder."""
  workdir = str(tmp_path_factory.mktemp("bpe_run"))
  config = tiny_gpt_config(
    "",  # prepared, with its own tokenizer, in WORKDIR/data
    **{
      "data.embedded_documents": 400,
      "data.eval_fraction": 0.05,
      "train.steps": 150,  # ~8 s: enough for greedy decoding to write words rather than commas
      "train.learning_rate": 5e-3,
      "train.log_every": 25,
      "checkpoint.every_steps": 150,
      "checkpoint.async_save": False,
    },
  )
  assert config.data.tokenizer_type == "auto" and not config.data.tokenizer
  return workdir, loop.run(config, workdir)


def test_gpt_tiny_trains_a_byte_level_bpe_that_round_trips_any_text(bpe_run):
  workdir, _ = bpe_run
  with open(os.path.join(workdir, "tokenizer", "tokenizer.json")) as f:
    spec = json.load(f)
  assert spec["model"]["type"] == "BPE" and spec["pre_tokenizer"]["type"] == "ByteLevel"
  tokenizer = Tokenizer.load(os.path.join(workdir, "tokenizer"))
  assert tokenizer.hf.eos_token == tokenizer.hf.bos_token == "<|endoftext|>"
  assert tokenizer.special_ids["eos"] == tokenizer.hf.convert_tokens_to_ids("<|endoftext|>")
  assert [tokenizer.decode(ids) for ids in tokenizer.encode_batch(ROUND_TRIP)] == ROUND_TRIP
  options = prepare.load_metadata(os.path.join(workdir, "data"))["options"]
  assert (options["tokenizer_type"], options["packing"]) == ("bpe", "gpt")


def test_rows_are_documents_between_end_of_text_tokens(tmp_path):
  texts = ["alpha beta gamma delta", "one two", "a much longer document that cannot fit in one row at all", "short"]
  (tmp_path / "corpus.txt").write_text("\n".join(texts * 3) + "\n")
  out = str(tmp_path / "data")
  prepare.prepare(
    str(tmp_path / "corpus.txt"),
    out,
    seq_len=12,
    vocab_size=300,
    eval_fraction=0.0,
    packing="gpt",
    tokenizer_type="bpe",
  )
  tokenizer = Tokenizer.load(os.path.join(out, "tokenizer"))
  eot = tokenizer.hf.convert_tokens_to_ids("<|endoftext|>")
  ds = loader.make_dataset(out, "train", global_batch_size=1, seed=0, shuffle=False, repeat=False, drop_remainder=False)
  batches = list(ds)
  ids, segments = (np.concatenate([b[k] for b in batches]) for k in ("input_ids", "segment_ids"))
  stream = [int(t) for row, seg in zip(ids, segments) for t in row[seg > 0]]
  assert stream == [t for doc in tokenizer.encode_batch(texts * 3) for t in [eot, *doc, eot]]
  assert (ids[segments == 0] == eot).all()  # padding is end-of-text too, masked by segment 0


def test_generate_greedy_writes_text_with_spaces(bpe_run, capsys):
  workdir, _ = bpe_run
  args = ["generate", f"--workdir={workdir}", "--prompt=the soup was", "--temperature=0", "--max_new_tokens=12"]
  assert cli.main(args) == 0
  (completion,) = json.loads(capsys.readouterr().out)["completions"]
  text = completion["completion"]
  assert " " in text.strip() and not {"Ġ", "Ċ"} & set(text), text


def test_prepared_data_of_another_tokenizer_type(gpt_prepared, tmp_path, capsys):
  # gpt_prepared holds a WordPiece: refused when the config names bpe, kept (with a warning) under auto.
  with pytest.raises(
    UserError,
    match=r"^prepared data in .* has a wordpiece tokenizer, this run trains bpe \(data.tokenizer_type\); "
    r"use another data.prepared_dir$",
  ):
    loop.run(tiny_gpt_config(gpt_prepared, **{"data.tokenizer_type": "bpe"}), str(tmp_path / "explicit"))
  loop.run(tiny_gpt_config(gpt_prepared, **{"train.steps": 2}), str(tmp_path / "auto"))
  assert "has a wordpiece tokenizer (task.name=causal_lm would train bpe): using it" in capsys.readouterr().err


def test_translation_from_scratch_trains_a_byte_level_bpe(tmp_path):
  # Fine-tuning data trains its tokenizer in `finetune/base.py` when there is none to load.
  overrides = {"task.name": "translation", "data.train": "embedded", "data.seq_len": 64, "train.steps": 2}
  overrides.update({"data.train_examples": 64, "data.eval_examples": 16, "checkpoint.async_save": False})
  loop.run(tiny_gpt_config("", **overrides), str(tmp_path))
  tokenizer = Tokenizer.load(str(tmp_path / "tokenizer"))
  assert json.loads(tokenizer._json)["model"]["type"] == "BPE"
  assert tokenizer.special_ids["sep"] == tokenizer.special_ids["eos"] == tokenizer.hf.eos_token_id
  source = "Zuk notocho zima men."
  assert tokenizer.decode(tokenizer.encode_batch([source])[0]) == source


def test_the_exported_model_continues_a_prompt_in_the_hf_pipeline_exactly_as_generate_does(bpe_run, tmp_path, capsys):
  transformers = pytest.importorskip("transformers")
  pytest.importorskip("torch")
  workdir, _ = bpe_run
  out = str(tmp_path / "hf")
  assert cli.main(["export", f"--workdir={workdir}", f"--out={out}"]) == 0
  capsys.readouterr()
  prompts = ["the soup was", "we went to the"]
  args = ["generate", f"--workdir={workdir}", "--temperature=0", "--max_new_tokens=10"]
  assert cli.main([*args, *(f"--prompt={p}" for p in prompts)]) == 0
  ours = [c["completion"] for c in json.loads(capsys.readouterr().out)["completions"]]
  generator = transformers.pipeline("text-generation", model=out, tokenizer=out)
  for prompt, completion in zip(prompts, ours):
    (result,) = generator(prompt, do_sample=False, max_new_tokens=10)
    assert result["generated_text"] == prompt + completion, (prompt, completion)
