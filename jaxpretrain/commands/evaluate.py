"""`jaxpretrain evaluate --workdir=DIR`: score a run's checkpoint on its evaluation data → DIR/eval.json.

The checkpoint is the best one by `eval.metric` when the run evaluated during training (kept by
the Checkpointer's best_fn), else the latest, unless a step is given. Metrics come from the task's
summed eval aux (the same `eval_step` training uses): loss plus accuracy and macro-F1 for
classification, entity-level precision/recall/F1 for token classification; QA adds SQuAD EM/F1
from post-processed answer texts. Pretraining runs report their MLM/LM loss and accuracy (causal
LM adds perplexity); translation adds BLEU and exact match of greedy translations.
"""

from __future__ import annotations

import json
import os

import jax

from jaxpretrain import checkpoint as checkpoint_lib
from jaxpretrain.errors import UserError
from jaxpretrain.models.config import ModelConfig
from jaxpretrain.parallel import strategy as strategy_lib
from jaxpretrain.tasks import registry
from jaxpretrain.train.state import TrainState


def restore_state(config, workdir: str, task, strategy, seq_len: int, step: int) -> TrainState:
  """A TrainState whose params are those saved at `step` (optimizer state left fresh)."""
  from jaxpretrain.train.loop import init_state

  state = init_state(config, strategy, task, seq_len, max(config.train.steps, 1))
  state_dir = checkpoint_lib.item_path(workdir, step)
  saved = checkpoint_lib.flat_leaves({"params": checkpoint_lib.saved_tree(state_dir)["params"]})
  wanted = checkpoint_lib.flat_leaves({"params": state.params})
  # Saved leaves this config does not build are left unread.
  checkpoint_lib.check_shapes(
    saved,
    wanted,
    checkpoint_lib.does_not_fit(step, checkpoint_lib.checkpoint_dir(workdir)),
    optional=lambda name: name not in wanted,
  )
  params = checkpoint_lib.restore_subtree(state_dir, {"params": state.params})["params"]
  return state.replace(params=params)


def evaluate(config, workdir: str, *, step: int = -1) -> dict:
  """Evaluates a run and writes WORKDIR/eval.json.

  Args:
    config: the run's config (WORKDIR/config.json) with any overrides, e.g. `data.eval`.
    workdir: the run directory.
    step: the checkpoint step; -1 = best by `eval.metric`, else latest.

  Returns:
    The eval.json content: the metrics plus `step`, `checkpoint`, `data`, `examples`.
  """
  model_config = ModelConfig.from_config(config.model)
  best_metric = config.eval.metric if config.eval.every_steps else ""  # the best step, when one was kept
  chosen, how = checkpoint_lib.resolve_step(workdir, step, best_metric=best_metric, best_mode=config.eval.metric_mode)
  strategy = strategy_lib.create(config.mesh)
  data = registry.build_data(config, workdir, with_train=False)
  task = registry.build_task(config, model_config, data)
  state = restore_state(config, workdir, task, strategy, data.seq_len, chosen)
  eval_batches = data.eval_batches()
  if not eval_batches:
    raise UserError(f"no evaluation data for {workdir}: set data.eval")
  from jaxpretrain.train.loop import evaluate_batches

  metrics = evaluate_batches(state, strategy.compile_eval_step(), strategy, eval_batches, config.train.seed)
  eval_scores = registry.spec(config.task.name).eval_scores  # QA's EM/F1, translation's BLEU
  if eval_scores is not None:
    metrics.update(eval_scores(config, task, state, strategy, data.tokenizer))
  result = {
    **metrics,
    "step": int(chosen),
    "checkpoint": how,
    "data": data.info.get("eval", config.data.eval or config.data.train),
  }
  if data.info.get("eval_examples") is not None:
    result["examples"] = data.info["eval_examples"]
  if jax.process_index() == 0:
    path = os.path.join(workdir, "eval.json")
    with open(path + ".tmp", "w") as f:
      json.dump(result, f, indent=2, sort_keys=True)
    os.replace(path + ".tmp", path)
  return result
