"""`jaxpretrain generate`: continue prompts with a causal-LM run's checkpoint (`tasks/decoding.py`)."""

from __future__ import annotations

import jax

from jaxpretrain import checkpoint as checkpoint_lib
from jaxpretrain import config as config_lib
from jaxpretrain import paths
from jaxpretrain.data.common import boundary_ids
from jaxpretrain.errors import UserError
from jaxpretrain.models.config import ModelConfig
from jaxpretrain.tasks import registry
from jaxpretrain.tasks.decoding import complete


def load_run(workdir: str, step: int | None = None):
  """The parts of a decoder run that generation needs.

  Args:
    workdir: a causal-LM (or translation) run.
    step: the checkpoint step; None = the newest step that loads.

  Returns:
    (config, ModelConfig, params on the default device, Tokenizer, step).
  """
  from jaxpretrain.data.tokenizer import Tokenizer

  config = config_lib.load_saved(workdir)
  model_config = ModelConfig.from_config(config.model)
  if not model_config.causal:
    raise UserError(
      f"{workdir} is a {config.task.name} run of a bidirectional model (model.causal=false); generate needs a causal LM"
    )
  # The given step, else the newest that loads (past a corrupt latest step, with a warning).
  step, _, params = checkpoint_lib.read_step(
    workdir, lambda s: checkpoint_lib.restore_params(checkpoint_lib.item_path(workdir, s)), step
  )
  params = jax.device_put(params)
  own = paths.join(workdir, "tokenizer")
  tokenizer = Tokenizer.load(own)
  return config, model_config, params, tokenizer, step


def generate(
  workdir: str,
  prompts: list[str],
  *,
  max_new_tokens: int = 32,
  temperature: float = 1.0,
  top_k: int = 0,
  top_p: float = 1.0,
  seed: int = 0,
  step: int | None = None,
) -> dict:
  """Continues each prompt with the run's latest (or `step`) checkpoint.

  Args:
    workdir: a causal-LM run, or a translation run (a prompt is then a source text and the
      completion its translation).
    prompts: the prompt texts, decoded together as one left-padded batch.
    max_new_tokens: tokens to generate at most per prompt.
    temperature: 0 = greedy; otherwise sampling temperature.
    top_k: sample among the k most likely tokens (0 = all).
    top_p: sample within the top-p nucleus (1 = all).
    seed: the sampling seed.
    step: checkpoint step (None = latest).

  Returns:
    {"step", "completions": [{"prompt", "completion", "new_tokens", "eos"}]}.
  """
  if not prompts:
    raise UserError("give at least one --prompt")
  if max_new_tokens < 1:
    raise UserError(f"--max_new_tokens must be positive, got {max_new_tokens}")
  if temperature < 0:
    raise UserError(f"--temperature must be >= 0, got {temperature}")
  if top_k < 0:
    raise UserError(f"--top_k must be >= 0, got {top_k}")
  if not 0 < top_p <= 1:
    raise UserError(f"--top_p must be in (0, 1], got {top_p}")
  config, model_config, params, tokenizer, step = load_run(workdir, step)
  bos, eos = boundary_ids(tokenizer.special_ids)
  if top_k > model_config.vocab_size:
    raise UserError(f"--top_k={top_k} exceeds the vocabulary ({model_config.vocab_size})")
  # A translation run reads `[BOS] source [SEP]` and writes the target: a prompt is a source.
  end = [tokenizer.special_ids["sep"]] if registry.spec(config.task.name).source_prompts else []
  ids = [[bos, *tokens, *end] for tokens in tokenizer.encode_batch(prompts)]
  results = complete(
    params,
    model_config,
    ids,
    eos_id=eos,
    pad_id=tokenizer.special_ids["pad"],
    max_new_tokens=max_new_tokens,
    seed=seed,
    temperature=temperature,
    top_k=top_k,
    top_p=top_p,
  )
  return {
    "step": int(step),
    "completions": [
      {
        "prompt": prompt,
        "completion": tokenizer.decode(generated, skip_special_tokens=True),
        "new_tokens": len(generated) + int(finished),
        "eos": finished,
      }
      for prompt, (generated, finished) in zip(prompts, results)
    ],
  }
