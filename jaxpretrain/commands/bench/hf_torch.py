"""The same training step in Hugging Face transformers on PyTorch (eager), for `bench --compare=hf-torch`.

The reference is what a user gets from the stock HF model and a plain PyTorch loop: `BertForMaskedLM`
(MLM; logits over every position, loss on the 15% selected ones, as HF computes it) or
`GPT2LMHeadModel` (causal LM), `sdpa` attention, AdamW, the same gradient clipping, autocast to the
model's compute dtype when it is not float32, on CUDA when JAX runs on a GPU and on the CPU
otherwise. PyTorch is an optional extra (`pip install 'jaxpretrain[torch]'`), imported here only.
"""

from __future__ import annotations

import time

from jaxpretrain.errors import UserError
from jaxpretrain.models.config import ModelConfig
from jaxpretrain.tasks import registry


def import_torch():
  """(torch, transformers), or a one-line `UserError` when they are not installed."""
  try:
    import torch
    import transformers
  except ImportError:
    raise UserError("--compare=hf-torch needs PyTorch and transformers: pip install 'jaxpretrain[torch]'") from None
  return torch, transformers


def _bench(task_name: str):
  """The task table's `BenchSpec` of `task_name`, or a `UserError` for a task bench does not measure."""
  bench = registry.TASKS[task_name].bench if task_name in registry.TASKS else None
  if bench is None:
    raise UserError(f"--compare=hf-torch supports task.name {' and '.join(registry.bench_names())}, not {task_name!r}")
  return bench


def hf_model(cfg: ModelConfig, task_name: str):
  """The HF PyTorch model with `cfg`'s dimensions and dropout (freshly initialized)."""
  _, transformers = import_torch()
  family = _bench(task_name).hf_family
  architecture = getattr(transformers, registry.TASKS[task_name].hf_architectures[family])
  if family == "bert":
    config = transformers.BertConfig(
      vocab_size=cfg.vocab_size,
      hidden_size=cfg.hidden_size,
      num_hidden_layers=cfg.num_hidden_layers,
      num_attention_heads=cfg.num_attention_heads,
      intermediate_size=cfg.intermediate_size,
      hidden_act=cfg.hidden_act,
      hidden_dropout_prob=cfg.hidden_dropout_prob,
      attention_probs_dropout_prob=cfg.attention_probs_dropout_prob,
      max_position_embeddings=cfg.max_position_embeddings,
      type_vocab_size=max(cfg.type_vocab_size, 1),
      layer_norm_eps=cfg.layer_norm_eps,
      attn_implementation="sdpa",
    )
  else:
    config = transformers.GPT2Config(
      vocab_size=cfg.vocab_size,
      n_embd=cfg.hidden_size,
      n_layer=cfg.num_hidden_layers,
      n_head=cfg.num_attention_heads,
      n_inner=cfg.intermediate_size,
      n_positions=cfg.max_position_embeddings,
      activation_function=cfg.hidden_act,
      resid_pdrop=cfg.hidden_dropout_prob,
      embd_pdrop=cfg.hidden_dropout_prob,
      attn_pdrop=cfg.attention_probs_dropout_prob,
      layer_norm_epsilon=cfg.layer_norm_eps,
      attn_implementation="sdpa",
    )
  return architecture(config)


class TorchStep:
  """A PyTorch training step on a fixed synthetic batch; `time(n)` runs n steps and returns seconds.

  Args:
    cfg: model dimensions (and dtype: float32, or autocast to bfloat16/float16).
    task_name: a task `bench` measures (`registry.bench_names()`).
    batch_size, seq_len: the batch shape.
    train_config: the `config.train` section (learning rate, AdamW, clipping).
    mask_prob: the share of positions MLM scores.
    on_gpu: run on CUDA (when JAX runs on a GPU).
  """

  def __init__(
    self,
    cfg: ModelConfig,
    task_name: str,
    batch_size: int,
    seq_len: int,
    train_config,
    mask_prob: float = 0.15,
    on_gpu: bool = False,
  ):
    torch, _ = import_torch()
    self.torch = torch
    if on_gpu and not torch.cuda.is_available():
      raise UserError("--compare=hf-torch: JAX runs on a GPU but this PyTorch build has no CUDA")
    self.device = "cuda" if on_gpu else "cpu"
    torch.manual_seed(0)
    self.model = hf_model(cfg, task_name).to(self.device).train()
    self.optimizer = torch.optim.AdamW(
      self.model.parameters(),
      lr=train_config.learning_rate,
      betas=(train_config.adam_b1, train_config.adam_b2),
      eps=train_config.adam_eps,
      weight_decay=train_config.weight_decay,
      fused=on_gpu,
    )
    self.max_grad_norm = train_config.max_grad_norm
    self.autocast_dtype = None if cfg.dtype == "float32" else getattr(torch, cfg.dtype)
    self.ids = torch.randint(5, cfg.vocab_size, (batch_size, seq_len), device=self.device)
    self.labels = self.ids.clone()
    if _bench(task_name).hf_scores_mask_prob:
      self.labels[torch.rand(batch_size, seq_len, device=self.device) >= mask_prob] = -100
    self.loss = float("nan")
    self.threads = torch.get_num_threads()

  def _step(self):
    torch = self.torch
    with torch.autocast(self.device, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
      loss = self.model(input_ids=self.ids, labels=self.labels).loss
    loss.backward()
    if self.max_grad_norm > 0:
      torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.max_grad_norm)
    self.optimizer.step()
    self.optimizer.zero_grad(set_to_none=True)
    return loss

  def time(self, steps: int) -> float:
    """Runs `steps` steps; returns their wall-clock seconds (device synchronized)."""
    start = time.perf_counter()
    for _ in range(steps):
      loss = self._step()
    if self.device == "cuda":
      self.torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    self.loss = float(loss.detach())
    return seconds
