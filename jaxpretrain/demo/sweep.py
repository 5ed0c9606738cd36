"""Many short classification fine-tunes of one architecture, with one compiled train step.

The demo fine-tunes at several label budgets × seeds, from a pretrained encoder and from scratch.
Every run here shares one `Task`, one optimizer and one schedule length, and `TrainState` carries
those as static fields, so the jitted `train_step` — the very function `loop.run` compiles — is
compiled once, and every run after the first costs only its steps. A run is: fresh state (seed) →
optional warm start of the encoder from a pretraining run (`warm_start.apply`, as `loop.run`
does) → `steps` updates on shuffled batches of its examples → accuracy on a fixed test set.
The strategy and the state come from the pieces `loop.setup` uses (`loop.create_strategy`,
`TrainState.create`), with the strategy's initializer compiled once for all seeds.

What the runs share is done once (measured in `benchmarks/demo_profile.py`): the pretrained encoder is
read from its checkpoint on the first warm start and kept on the host, and the test batches are
placed on the devices once. Batches keep one shape (`data.seq_len`,
no length buckets, no length grouping): one compilation of each step serves every run, and the
batch order is the plain seeded shuffle every run of the recipe was measured with.
"""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import numpy as np

from jaxpretrain import checkpoint as checkpoint_lib
from jaxpretrain.data.finetune.batches import LabeledBatches, padded_batches
from jaxpretrain.models.config import ModelConfig
from jaxpretrain.tasks.classification import SequenceClassification
from jaxpretrain.train import loop, warm_start
from jaxpretrain.train.state import TrainState

# One shape for every batch: see the module doc.
_FIXED_SHAPE = dict(buckets=0)


class Sweep:
  """Fine-tunes `SequenceClassification` runs that differ only in data, seed and initialization.

  Args:
    config: a fine-tuning config: `model.*`, `task.pooling`, `task.classifier_dropout`,
      `train.*` (batch size, learning rate, warmup, weight decay, ...), `eval.batch_size` (the
      test-set batches; 0 = `train.batch_size`), `data.seq_len`, `mesh.*`.
    num_labels: classes of the task.
    steps: optimizer steps of every run (one schedule length: one compilation).
    eval_arrays: encoded test examples (`input_ids`, ..., `label`) every run is scored on.
  """

  def __init__(self, config, *, num_labels: int, steps: int, eval_arrays: dict):
    self.config, self.steps = config, steps
    self.seq_len = config.data.seq_len
    model_config = ModelConfig.from_config(config.model)
    self.task = SequenceClassification(
      model_config, num_labels=num_labels, pooling=config.task.pooling, dropout=config.task.classifier_dropout
    )
    self.strategy = loop.create_strategy(config, model_config)
    self._make_state = TrainState.create(config, self.task, steps)
    self._init = None
    self._encoders: dict[tuple[str, int], dict] = {}  # (init_from, init_step) -> the restored leaves, on the host
    eval_batch = config.eval.batch_size or config.train.batch_size
    self.eval_batches = [self.strategy.put_batch(b) for b in padded_batches(eval_arrays, eval_batch, **_FIXED_SHAPE)]

  def init_state(self, seed: int) -> TrainState:
    """A freshly initialized, sharded state; the initializer and the step functions are built on
    the first call only (and compile once)."""
    rng = jax.random.PRNGKey(seed)
    if self._init is None:
      self._init = self.strategy.init_program(self._make_state, lambda r: self.task.init(r, self.seq_len), rng)
      self.train_step = self.strategy.compile_train_step()
      self.eval_step = self.strategy.compile_eval_step()
    return self._init(rng)

  def compilations(self) -> dict[str, int]:
    """How many programs each step function has compiled so far (1 each after any number of runs)."""
    if self._init is None:
      return {"train_step": 0, "eval_step": 0}
    return {"train_step": self.train_step.jitted._cache_size(), "eval_step": self.eval_step.jitted._cache_size()}

  def warm_start(self, state: TrainState, init_from: str, init_step: int = -1) -> TrainState:
    """`state` with the encoder of the pretraining run `init_from`, as `warm_start.apply` gives it;
    the checkpoint is read on the first call only and its leaves kept on the host.

    The train step donates its state, so every run gets its own device copy of the kept leaves.
    """
    key = (init_from, init_step)
    if key not in self._encoders:
      config = copy.deepcopy(self.config)
      config.init_from, config.init_step = init_from, init_step
      self._encoders[key] = jax.device_get(warm_start.read_encoder(config, state))
    flat_shardings = {p: leaf.sharding for p, leaf in checkpoint_lib.flat_leaves(state.params["encoder"]).items()}
    restored = {p: jax.device_put(leaf, flat_shardings[p]) for p, leaf in self._encoders[key].items()}
    return warm_start.merge(state, restored)

  def run(self, train_arrays: dict, *, seed: int, init_from: str = "", init_step: int = -1) -> dict:
    """One fine-tuning run.

    Args:
      train_arrays: encoded training examples (`input_ids`, ..., `label`).
      seed: initialization, dropout and shuffling seed.
      init_from: a pretraining workdir whose encoder starts the run; "" = from scratch.
      init_step: the checkpoint step of `init_from` (-1 = the latest).

    Returns:
      The task metrics on the test set (`accuracy`, `macro_f1`, `loss`) and `final_train_loss`.
    """
    state = self.init_state(seed)
    if init_from:
      state = self.warm_start(state, init_from, init_step)
    arrays = {k: np.asarray(v) for k, v in train_arrays.items()}
    arrays.setdefault("weight", np.ones(len(arrays["label"]), np.float32))
    batches = LabeledBatches(arrays, self.config.train.batch_size, seed, grouping=0, **_FIXED_SHAPE)
    base = jax.random.PRNGKey(seed + 1)
    metrics = {}
    for step in range(self.steps):
      state, metrics = self.train_step(state, self.strategy.put_batch(next(batches)), jax.random.fold_in(base, step))
      # One program in flight at a time: on a host-platform mesh (fake CPU devices) queued
      # programs with collectives can starve each other of threads; the step is the unit anyway.
      jax.block_until_ready(metrics["loss"])
    aux = None
    for batch in self.eval_batches:
      out = jax.block_until_ready(self.eval_step(state, batch, base))
      aux = out if aux is None else jax.tree.map(jnp.add, aux, out)
    result = {k: float(v) for k, v in jax.device_get(self.task.metrics(aux)).items()}
    result["final_train_loss"] = float(metrics["loss"]) if metrics else float("nan")
    return result
