"""An MLM run with `data.tokenizer_type=unigram` trains a SentencePiece-like tokenizer with a [MASK] token."""

import json
import math
import os

from jaxpretrain.data.pretrain import prepare
from jaxpretrain.data.tokenizer import Tokenizer
from jaxpretrain.train import loop
from tests.finetune.helpers import tiny_config


def test_mlm_run_with_a_unigram_tokenizer(tmp_path):
  workdir = str(tmp_path / "run")
  summary = loop.run(tiny_config(data__tokenizer_type="unigram"), workdir)
  assert summary["step"] == 4 and math.isfinite(summary["train"]["loss"])
  with open(os.path.join(workdir, "tokenizer", "tokenizer.json")) as f:
    spec = json.load(f)
  assert spec["model"]["type"] == "Unigram" and spec["pre_tokenizer"]["type"] == "Metaspace"
  tokenizer = Tokenizer.load(os.path.join(workdir, "tokenizer"))
  mask = tokenizer.special_ids["mask"]
  assert mask is not None and tokenizer.hf.convert_ids_to_tokens(mask) == "[MASK]"
  assert prepare.load_metadata(os.path.join(workdir, "data"))["options"]["tokenizer_type"] == "unigram"


def test_mlm_with_a_byte_level_bpe_is_an_error_before_anything_is_written(tmp_path, capsys):
  from jaxpretrain import cli

  workdir = tmp_path / "w"
  code = cli.main(["pretrain", "--config=configs/tiny.py", f"--workdir={workdir}", "--config.data.tokenizer_type=bpe"])
  err = capsys.readouterr().err
  assert code == 2 and err == (
    "jaxpretrain: error: data.tokenizer_type=bpe has no [MASK] token, which task.name=mlm needs; "
    "use wordpiece or unigram\n"
  )
  assert not workdir.exists()
