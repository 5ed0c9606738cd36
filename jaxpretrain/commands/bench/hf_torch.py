"""The same training step in Hugging Face transformers on PyTorch (eager), for `bench --compare=hf-torch`.

The reference is what a user gets from the stock HF model and a plain PyTorch loop: the model's
family's architecture for the task (`BertForMaskedLM`, `RobertaForMaskedLM`, `ModernBertForMaskedLM`:
logits over every position, loss on the `task.mask_prob` selected ones, as HF computes it;
`GPT2LMHeadModel`, `LlamaForCausalLM`: causal LM) with the config an export writes, `sdpa` attention,
AdamW, the same gradient clipping, autocast to the model's compute dtype when it is not float32, on
CUDA when JAX runs on a GPU and on the CPU otherwise. A model whose switches match no family
(`model.family=auto`) runs as the task's stock model. PyTorch is an optional extra
(`pip install 'jaxpretrain[torch]'`), imported here only.
"""

from __future__ import annotations

import time

from jaxpretrain.errors import UserError
from jaxpretrain.hf import export_config
from jaxpretrain.models import families as model_families
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


def reference_family(cfg: ModelConfig, task_name: str) -> str:
  """The HF family the reference is built as: the model's (`model.family`, or the family its switches
  match), else, for `auto` switches no family has, the task's stock model (BERT for MLM, GPT-2 for LM)."""
  return model_families.resolve(cfg) or _bench(task_name).hf_family


def hf_model(cfg: ModelConfig, task_name: str):
  """The HF PyTorch model of `cfg`'s family with its dimensions and dropout (freshly initialized, sdpa attention).

  The HF config is the one an export writes (`hf.export_config.hf_config`): one translation of the
  dimensions (GQA, gated MLP, window, rotary bases, biases, tying) for both uses.

  Args:
    cfg: the model.
    task_name: a task `bench` measures (`registry.bench_names()`).

  Returns:
    The `transformers` model (float32, on the CPU).
  """
  _, transformers = import_torch()
  family = reference_family(cfg, task_name)
  arch = registry.TASKS[task_name].hf_architectures.get(family)
  if arch is None:
    raise UserError(f"--compare=hf-torch: a {family} model has no HF architecture for task.name={task_name}")
  if not hasattr(transformers, arch):
    raise UserError(
      f"--compare=hf-torch: transformers {transformers.__version__} has no {arch} (model.family={family}); "
      "upgrade transformers"
    )
  # Bench's batches are ids >= 5 without padding; the specials only name ids (RoBERTa numbers positions after pad).
  special_ids = {"pad": max(cfg.position_offset - 1, 0), "unk": 1, "cls": 2, "sep": 3, "mask": 4}
  config = export_config.hf_config(cfg, family, arch, special_ids)
  if hasattr(config, "reference_compile"):  # transformers 4's ModernBERT torch.compiles parts on GPU: stay eager
    config.reference_compile = False
  config._attn_implementation = "sdpa"  # what the configs' `attn_implementation=` argument sets (transformers 4 and 5)
  return getattr(transformers, arch)(config)


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
    self.architecture = type(self.model).__name__
    self.params = sum(p.numel() for p in self.model.parameters())  # tied weights once, as ours
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
