"""`Model`: an `Encoder` and one task head, the module every task applies."""

from __future__ import annotations

import flax.linen as nn

from jaxpretrain.models.config import ModelConfig
from jaxpretrain.models.encoder import Encoder


class Model(nn.Module):
  """An `Encoder` (params under `encoder/`) and one task head (params under `head/`)."""

  config: ModelConfig
  head: nn.Module

  @nn.compact
  def __call__(self, inputs: dict, *, deterministic: bool = True, decode: bool = False, **head_inputs):
    """Runs encoder and head.

    Args:
      inputs: dict with `input_ids` and optionally `attention_mask`, `token_type_ids`,
        `segment_ids`, `positions`.
      deterministic: disables dropout.
      decode: incremental decoding through the KV cache (see `Encoder`).
      **head_inputs: passed to the head (e.g. `positions` for the MLM head).

    Returns:
      Whatever the head returns (logits).
    """

    out = Encoder(self.config, name="encoder")(
      inputs["input_ids"],
      attention_mask=inputs.get("attention_mask"),
      token_type_ids=inputs.get("token_type_ids"),
      segment_ids=inputs.get("segment_ids"),
      positions=inputs.get("positions"),
      deterministic=deterministic,
      decode=decode,
    )
    return self.head(out, deterministic=deterministic, **head_inputs)
