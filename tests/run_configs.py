"""Configs for end-to-end tests: the smallest model that still learns, on `tiny_prepared` data."""

from jaxpretrain import config as config_lib


def tiny_pretrain_config(prepared_dir: str, **overrides):
  """A 1-layer, 32-wide BERT on the session's prepared corpus; `overrides` are dotted keys."""
  c = config_lib.load("configs/tiny.py")
  c.model.num_hidden_layers, c.model.hidden_size, c.model.num_attention_heads = 1, 32, 2
  c.model.intermediate_size, c.model.vocab_size, c.model.max_position_embeddings = 64, 512, 32
  c.data.seq_len, c.data.prepared_dir, c.data.prefetch = 32, prepared_dir, 1
  c.train.batch_size, c.train.steps, c.train.log_every, c.train.progress = 8, 8, 1, False
  c.train.warmup_steps = 2
  c.eval.every_steps, c.eval.batches, c.checkpoint.every_steps = 0, 1, 4
  config_lib.apply_overrides(c, [(k, v) for k, v in overrides.items()])
  return c
