"""`jaxpretrain evaluate --workdir=DIR`: score a run's checkpoint on its evaluation data → DIR/eval.json.

The checkpoint is the best one by `eval.metric` when the run evaluated during training (kept by
the Checkpointer's best_fn), else the latest, unless a step is given. Metrics come from the task's
summed eval aux (the same `eval_step` training uses): loss plus accuracy and macro-F1 for
classification, entity-level precision/recall/F1 for token classification; QA adds SQuAD EM/F1
from post-processed answer texts. Pretraining runs report their MLM/LM loss and accuracy (causal
LM adds perplexity); translation adds BLEU and exact match of greedy translations. Classification
also keeps its summed confusion matrix (`confusion`, rows = true labels, with `label_names`):
`jaxpretrain evaluate` rewrites the fine-tuning run's report.md with it (`commands/report.py`).
"""

from __future__ import annotations

import json

import jax
import numpy as np

from jaxpretrain import checkpoint as checkpoint_lib
from jaxpretrain import paths
from jaxpretrain.errors import UserError
from jaxpretrain.models.config import ModelConfig
from jaxpretrain.parallel import strategy as strategy_lib
from jaxpretrain.tasks import registry
from jaxpretrain.train.loop import summed_eval_aux
from jaxpretrain.train.state import TrainState


def read_params(workdir: str, state: TrainState, step: int) -> dict:
  """The params saved at `step`, onto the shardings of `state.params` (checked against them first).

  Args:
    workdir: the run directory.
    state: a freshly initialized TrainState of the run's config.
    step: the checkpoint step.

  Returns:
    The parameter tree.

  Raises:
    UserError: when the saved params do not fit the config (names the first mismatching leaf).
  """
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
  return checkpoint_lib.restore_subtree(state_dir, {"params": state.params})["params"]


def restore_state(
  config, workdir: str, task, strategy, seq_len: int, step: int = -1, *, best_metric: str = "", best_mode: str = "min"
) -> tuple[TrainState, int, str]:
  """A TrainState whose params are those of a saved step (optimizer state left fresh).

  Args:
    config: the run's config.
    workdir: the run directory.
    task / strategy / seq_len: as for `loop.init_state`.
    step: the checkpoint step; -1 = the best by `best_metric` when kept, else the newest that loads
      (past a corrupt step, with a warning).
    best_metric / best_mode: see `checkpoint.read_step`.

  Returns:
    (state, step, how it was chosen: "given" | "best" | "latest").
  """
  from jaxpretrain.train.loop import init_state

  state = init_state(config, strategy, task, seq_len, max(config.train.steps, 1))
  chosen, how, params = checkpoint_lib.read_step(
    workdir, lambda s: read_params(workdir, state, s), step, best_metric=best_metric, best_mode=best_mode
  )
  return state.replace(params=params), chosen, how


def evaluate(config, workdir: str, *, step: int = -1, save: bool = True) -> dict:
  """Evaluates a run and writes WORKDIR/eval.json.

  Args:
    config: the run's config (WORKDIR/config.json) with any overrides, e.g. `data.eval`.
    workdir: the run directory.
    step: the checkpoint step; -1 = best by `eval.metric`, else the newest step that loads (a
      corrupt step is passed over with a warning; a given corrupt step is an error).
    save: write WORKDIR/eval.json (process 0).

  Returns:
    The eval.json content: the metrics plus `step`, `checkpoint`, `data`, `examples`; classification
    adds `confusion` (integer counts [true label][predicted label]) and `label_names`.
  """
  model_config = ModelConfig.from_config(config.model)
  best_metric = config.eval.metric if config.eval.every_steps else ""  # the best step, when one was kept
  checkpoint_lib.require_run(workdir).close()  # before building data: fail fast without checkpoints
  strategy = strategy_lib.create(config.mesh)
  data = registry.build_data(config, workdir, with_train=False)
  task = registry.build_task(config, model_config, data)
  state, chosen, how = restore_state(
    config, workdir, task, strategy, data.seq_len, step, best_metric=best_metric, best_mode=config.eval.metric_mode
  )
  eval_batches = data.eval_batches()
  if not eval_batches:
    raise UserError(f"no evaluation data for {workdir}: set data.eval")
  aux = summed_eval_aux(state, strategy.compile_eval_step(), strategy, eval_batches, config.train.seed)
  metrics = {k: float(v) for k, v in jax.device_get(state.task.metrics(aux)).items()}
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
  if "confusion" in aux:  # a matrix: kept out of the scalar metrics (metrics.jsonl, checkpoints)
    result["confusion"] = np.rint(jax.device_get(aux["confusion"])).astype(int).tolist()
    result["label_names"] = list(data.info.get("label_names", []))
  if save and jax.process_index() == 0:
    paths.write_text(paths.join(workdir, "eval.json"), json.dumps(result, indent=2, sort_keys=True))
  return result
