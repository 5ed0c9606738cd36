"""Translation as sequence-to-sequence LM: a decoder fine-tuned on `[BOS] source [SEP] target [EOS]`.

Training is causal LM with the loss on the target (and its EOS) only (`loss_mask`, see
`data/finetune/translation.py`); the source is context. Evaluation adds what only generation shows:
`translation_scores` translates every eval source greedily with the KV-cached decoder and scores
corpus BLEU (sacrebleu) and exact match against the references.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from jaxpretrain.data.common import boundary_ids
from jaxpretrain.tasks.causal_lm import CausalLM, next_token_weights


@dataclasses.dataclass(frozen=True)
class Translation(CausalLM):
  """Batch fields: `input_ids`, `attention_mask`, `loss_mask` [batch, length] and `weight` [batch]
  (0 on the padding rows of the last eval batch)."""

  name = "translation"

  def dummy_batch(self, batch_size, seq_len):
    ones = jnp.ones((batch_size, seq_len), jnp.int32)
    return {
      "input_ids": jnp.zeros_like(ones),
      "attention_mask": ones,
      "loss_mask": ones,
      "weight": jnp.ones((batch_size,), jnp.float32),
    }

  def target_weights(self, batch):
    weights = next_token_weights(batch) * batch["loss_mask"][:, 1:].astype(jnp.float32)
    if "weight" in batch:
      weights = weights * batch["weight"][:, None].astype(jnp.float32)
    return weights


def _normalize(text: str) -> str:
  return " ".join(text.split())


def translation_scores(config, params, model_config, tokenizer, *, samples: int = 3) -> dict:
  """BLEU and exact match of greedy translations of the eval pairs.

  References are compared as the tokenizer can write them (encoded and decoded: an uncased
  vocabulary lowercases them), so the score measures the model, not the vocabulary.

  Args:
    config: the run config (eval data as `data.*` names it, `data.seq_len`, batch sizes).
    params: the decoder's parameters.
    model_config: its `ModelConfig`.
    tokenizer: the run's tokenizer.
    samples: how many (source, reference, hypothesis) examples to include.

  Returns:
    {"bleu", "exact_match", "samples"}.
  """
  import sacrebleu

  from jaxpretrain.data.finetune import translation as data
  from jaxpretrain.tasks import decoding

  pairs, _ = data.read(config, "eval")
  prompts = data.prompts(pairs, tokenizer, config.data.seq_len)
  prompt_len = max(len(p) for p in prompts)
  _, eos = boundary_ids(tokenizer.special_ids)
  outputs = decoding.complete(
    params,
    model_config,
    prompts,
    eos_id=eos,
    pad_id=tokenizer.special_ids["pad"],
    max_new_tokens=config.data.seq_len - prompt_len,
    prompt_len=prompt_len,
    batch_size=min(len(prompts), config.eval.batch_size or config.train.batch_size),
  )
  hypotheses = [_normalize(tokenizer.decode(ids, skip_special_tokens=True)) for ids, _ in outputs]
  references = [
    _normalize(tokenizer.decode(ids, skip_special_tokens=True))
    for ids in tokenizer.encode_batch([p["target"] for p in pairs])
  ]
  bleu = sacrebleu.corpus_bleu(hypotheses, [references])
  exact = sum(h == r for h, r in zip(hypotheses, references)) / len(references)
  return {
    "bleu": round(bleu.score, 4),
    "exact_match": exact,
    "samples": [
      {"source": p["source"], "reference": r, "translation": h}
      for p, r, h in zip(pairs[:samples], references, hypotheses)
    ],
  }
