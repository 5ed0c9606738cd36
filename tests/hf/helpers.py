"""Tiny random HF models built by transformers from configs (no download), and our twins."""

from __future__ import annotations

import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxpretrain.hf import layout
from jaxpretrain.models import heads
from jaxpretrain.models.config import ModelConfig
from jaxpretrain.models.model import Model

VOCAB = 99
NUM_LABELS = 3
DIMS = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48)


def quiet_transformers() -> None:
  """No progress bars on stderr (tests read stderr for one-line errors)."""
  import transformers

  transformers.utils.logging.disable_progress_bar()
  transformers.utils.logging.set_verbosity_error()


quiet_transformers()


def hf_config(family: str, num_labels: int = NUM_LABELS, **changes):
  """A small config of `family` (vocabulary VOCAB, 4 heads; 2 layers, ModernBERT 3) with `changes`.

  ModernBERT: a window of 2 tokens each side (local_attention=4) on layer 1, global layers 0 and 2
  with different RoPE bases, so a 12-token row sees the window. Llama: 2 key/value heads (GQA),
  untied output embeddings (its default). Both compute attention eagerly, the reference math.
  """
  import transformers

  if family == "modernbert":
    config = transformers.ModernBertConfig(
      vocab_size=VOCAB,
      hidden_size=32,
      num_hidden_layers=3,
      num_attention_heads=4,
      intermediate_size=48,
      max_position_embeddings=64,
      local_attention=4,
      global_attn_every_n_layers=2,
      rope_parameters={
        "full_attention": {"rope_type": "default", "rope_theta": 1000.0},
        "sliding_attention": {"rope_type": "default", "rope_theta": 100.0},
      },
      pad_token_id=0,
      cls_token_id=2,
      sep_token_id=3,
      bos_token_id=2,
      eos_token_id=3,
      num_labels=num_labels,
      **changes,
    )
    config._attn_implementation = "eager"
    return config
  if family == "llama":
    config = transformers.LlamaConfig(
      vocab_size=VOCAB,
      hidden_size=32,
      num_hidden_layers=2,
      num_attention_heads=4,
      num_key_value_heads=2,
      intermediate_size=48,
      max_position_embeddings=64,
      rope_parameters={"rope_type": "default", "rope_theta": 500.0},
      bos_token_id=1,
      eos_token_id=2,
      pad_token_id=2,
      num_labels=num_labels,
      **changes,
    )
    config._attn_implementation = "eager"
    return config
  if family == "gpt2":
    return transformers.GPT2Config(
      vocab_size=VOCAB,
      n_embd=32,
      n_layer=2,
      n_head=4,
      n_inner=48,
      n_positions=40,
      bos_token_id=VOCAB - 1,
      eos_token_id=VOCAB - 1,
      pad_token_id=VOCAB - 1,
      num_labels=num_labels,
    )
  if family == "roberta":
    return transformers.RobertaConfig(
      vocab_size=VOCAB,
      max_position_embeddings=42,
      type_vocab_size=1,
      pad_token_id=1,
      bos_token_id=0,
      eos_token_id=2,
      num_labels=num_labels,
      **DIMS,
    )
  return transformers.BertConfig(
    vocab_size=VOCAB, max_position_embeddings=40, pad_token_id=0, num_labels=num_labels, **DIMS
  )


def hf_model(arch: str, family: str, seed: int = 0, **changes):
  """A random-init `transformers` model whose every tensor is perturbed: HF's init leaves biases at
  0 and LayerNorm at 1, where a mapping mistake would go unnoticed. `changes` go to `hf_config`."""
  import torch
  import transformers

  torch.manual_seed(seed)
  # QA heads have num_labels=2 outputs (start, end).
  config = hf_config(family, 2 if arch.endswith("QuestionAnswering") else NUM_LABELS, **changes)
  model = getattr(transformers, arch)(config).eval()
  with torch.no_grad():
    for p in model.parameters():
      p.add_(torch.randn_like(p) * 0.05)
  return model


def saved_tensors(directory: str) -> dict:
  """The tensors of `directory`/model.safetensors, as numpy."""
  from safetensors.numpy import load_file

  return load_file(os.path.join(directory, "model.safetensors"))


def head_for(cfg: ModelConfig, task: str, pooling: str = "cls"):
  return {
    "mlm": lambda: heads.MLMHead(cfg),
    "causal_lm": lambda: heads.CausalLMHead(cfg),
    "classification": lambda: heads.SequenceClassificationHead(cfg, NUM_LABELS, pooling=pooling),
    "token_classification": lambda: heads.TokenClassificationHead(cfg, NUM_LABELS),
    "qa": lambda: heads.QuestionAnsweringHead(cfg),
  }[task]()


def our_model(cfg: ModelConfig, task: str, pooling: str = "cls"):
  """(Model, flat template of its parameters as ShapeDtypeStructs)."""
  model = Model(cfg, head_for(cfg, task, pooling))
  inputs = {"input_ids": jnp.zeros((1, 8), jnp.int32)}
  params = jax.eval_shape(lambda: nn.meta.unbox(model.init(jax.random.PRNGKey(0), inputs)["params"]))
  return model, layout.flatten(params)


def padded_batch(family: str, seed: int = 0, batch: int = 3, length: int = 12) -> dict:
  """Random ids, right-padded rows of different lengths (never a special id inside a row)."""
  rng = np.random.default_rng(seed)
  ids = rng.integers(3, VOCAB - 1, size=(batch, length)).astype(np.int64)
  lengths = [length, length // 2, 3][:batch]
  mask = (np.arange(length)[None] < np.asarray(lengths)[:, None]).astype(np.int64)
  pad = {"bert": 0, "roberta": 1, "gpt2": VOCAB - 1, "modernbert": 0, "llama": 2}[family]
  ids = np.where(mask == 1, ids, pad)
  out = {"input_ids": ids, "attention_mask": mask}
  if family == "bert":
    out["token_type_ids"] = (np.arange(length)[None] >= np.asarray(lengths)[:, None] // 2).astype(np.int64) * mask
  return out


SPECIALS = {
  "bert": ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
  "roberta": ["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
  "gpt2": [],
  "modernbert": ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
  "llama": ["<unk>", "<s>", "</s>"],
}


def write_tokenizer(directory, family: str, size: int = VOCAB) -> None:
  """A word-level tokenizer of exactly `size` tokens with the family's special tokens and ids
  (BERT and ModernBERT [PAD]=0, RoBERTa <pad>=1, GPT-2 <|endoftext|> last, Llama <s>=1 and
  </s>=2, which also pads), saved as a HF tokenizer directory."""
  from tokenizers import Tokenizer, models, pre_tokenizers
  from transformers import PreTrainedTokenizerFast

  specials = SPECIALS[family]
  words = [f"w{i}" for i in range(size - len(specials) - (family == "gpt2"))]
  tokens = specials + words + (["<|endoftext|>"] if family == "gpt2" else [])
  unk = {"bert": "[UNK]", "roberta": "<unk>", "gpt2": "<|endoftext|>", "modernbert": "[UNK]", "llama": "<unk>"}[family]
  rust = Tokenizer(models.WordLevel({t: i for i, t in enumerate(tokens)}, unk_token=unk))
  rust.pre_tokenizer = pre_tokenizers.Whitespace()
  bert = dict(pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
  names = {
    "bert": bert,
    "modernbert": bert,
    "llama": dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="</s>"),
    "roberta": dict(
      bos_token="<s>",
      pad_token="<pad>",
      eos_token="</s>",
      unk_token="<unk>",
      mask_token="<mask>",
      cls_token="<s>",
      sep_token="</s>",
    ),
    "gpt2": dict(bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>"),
  }[family]
  PreTrainedTokenizerFast(tokenizer_object=rust, **names).save_pretrained(str(directory))


def write_checkpoint(directory, arch: str, family: str, **changes) -> object:
  """A random `arch` saved with `save_pretrained` plus a matching tokenizer; returns the model."""
  model = hf_model(arch, family, **changes)
  model.save_pretrained(str(directory))
  write_tokenizer(directory, family)
  return model


def torch_outputs(model, batch) -> np.ndarray:
  """A transformers model's logits on `batch` (QA: start and end logits stacked)."""
  import torch

  with torch.no_grad():
    out = model(**{k: torch.tensor(v) for k, v in batch.items()})
  if "start_logits" in out:
    return np.stack([out.start_logits.numpy(), out.end_logits.numpy()])
  return out.logits.numpy()


def jax_outputs(model, params, batch) -> np.ndarray:
  """Our model's logits on `batch`, shaped as `torch_outputs`'."""
  out = model.apply({"params": params}, {k: np.asarray(v, np.int32) for k, v in batch.items()})
  return np.stack([np.asarray(o) for o in out]) if isinstance(out, tuple) else np.asarray(out)
