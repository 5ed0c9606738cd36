"""Packing token lists into fixed-length rows of `input_ids` and `segment_ids` (see `prepare.py` for the format).

`Packer` packs like RoBERTa's FULL-SENTENCES (`packing="bert"`), `CausalPacker` packs documents as
`[BOS] doc [EOS]` back to back (`packing="gpt"`). A packer hands each finished row, as raw bytes,
to its writer's `write`.
"""

from __future__ import annotations

import numpy as np


class Packer:
  """Greedy FULL-SENTENCES packing of token lists into rows of `seq_len` (see the module doc)."""

  def __init__(self, seq_len: int, cls_id: int, sep_id: int, pad_id: int, writer):
    self.seq_len, self.cls_id, self.sep_id, self.pad_id = seq_len, cls_id, sep_id, pad_id
    self.writer = writer
    self.row = np.empty((2, seq_len), np.int32)  # input_ids, segment_ids
    self.pos, self.segment = 0, 0  # pos 0: no row open

  def add(self, tokens: list[int]):
    start, n = 0, len(tokens)
    while start < n:
      if self.pos == 0:
        self.row[0, 0], self.row[1, 0] = self.cls_id, 1
        self.pos, self.segment = 1, 0
      self.segment += 1
      take = min(n - start, self.seq_len - self.pos - 1)
      end = self.pos + take
      self.row[0, self.pos : end] = tokens[start : start + take]
      self.row[0, end] = self.sep_id
      self.row[1, self.pos : end + 1] = self.segment
      self.pos = end + 1
      start += take
      if self.seq_len - self.pos < 2:  # no room for a token and its [SEP]
        self.flush()

  def flush(self):
    if self.pos:
      self.row[0, self.pos :] = self.pad_id
      self.row[1, self.pos :] = 0
      self.writer.write(self.row.tobytes())
      self.pos = 0


class CausalPacker(Packer):
  """GPT packing: each document as `[BOS] doc [EOS]`, documents back to back; one that does not
  fit continues at the start of the next row (as its own segment, without a new [BOS])."""

  def add(self, tokens: list[int]):
    tokens = [self.cls_id, *tokens, self.sep_id]
    start, n = 0, len(tokens)
    while start < n:
      if self.pos == 0:
        self.segment = 0
      self.segment += 1
      take = min(n - start, self.seq_len - self.pos)
      end = self.pos + take
      self.row[0, self.pos : end] = tokens[start : start + take]
      self.row[1, self.pos : end] = self.segment
      self.pos = end
      start += take
      if self.seq_len - self.pos < 2:  # a one-token piece would predict nothing
        self.flush()


PACKERS = {"bert": Packer, "gpt": CausalPacker}
