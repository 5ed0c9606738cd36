"""Fine-tune the tiny GPT of `configs/gpt_tiny.py` to translate Embedded-B into the embedded language.

Pairs are formatted `[BOS] source [SEP] target [EOS]` with the loss on the target only (with the
byte-level BPE of gpt_tiny, <|endoftext|> is all three; without `init_from` one is trained). The task
(`data/readers/embedded_translation.py`) runs offline: Embedded-B has its own vocabulary and word order
(verb-final clauses, adjectives after nouns); the decoder writes the language it was pretrained on.

  jaxpretrain pretrain --config=configs/gpt_tiny.py --workdir=runs/gpt-tiny
  jaxpretrain finetune --config=configs/translate_tiny.py --workdir=runs/translate --config.init_from=runs/gpt-tiny
  jaxpretrain evaluate --workdir=runs/translate          # eval.json: loss, perplexity, BLEU, exact match
  jaxpretrain generate --workdir=runs/translate --prompt="Zuk notocho zima men." --temperature=0
  # -> "The soup was green."

Without `init_from` the same command trains the same decoder from scratch (pass
`--config.data.tokenizer=runs/gpt-tiny/tokenizer` so both read text alike). Other pairs: a `.jsonl`
of {"source", "target"}, or a tfds translation dataset (`tfds:ted_hrlr_translate/pt_to_en`;
`tfds:wmt14_translate/de-en` where TensorFlow is installed).
"""

from jaxpretrain import config as config_lib


def get_config():
  c = config_lib.load("gpt_tiny")  # the decoder's dims must match its pretraining run
  c.task.name = "translation"
  c.data.train = "embedded"  # the embedded translation pairs (train split; test split for eval)
  c.data.train_examples = 2000
  c.data.eval_examples = 200
  c.data.seq_len = 128  # target <= ~25 tokens, source <= ~60 (its words split into pieces)
  c.train.num_epochs = 4.0  # 2000 pairs / 32 = 63 steps an epoch -> 250 steps
  c.train.batch_size = 32
  c.train.learning_rate = 1e-3
  c.train.warmup_steps = 20
  c.train.log_every = 25
  c.eval.every_steps = 125
  c.checkpoint.every_steps = 125
  c.checkpoint.keep = 2
  return c
