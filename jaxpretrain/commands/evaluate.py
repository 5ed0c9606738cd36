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
import jax.numpy as jnp
import numpy as np

from jaxpretrain import checkpoint as checkpoint_lib
from jaxpretrain.errors import UserError
from jaxpretrain.models.config import ModelConfig
from jaxpretrain.parallel import strategy as strategy_lib
from jaxpretrain.tasks import registry
from jaxpretrain.train import optim, warm_start
from jaxpretrain.train.state import TrainState

LABELED = ("classification", "token_classification", "qa")


def pick_step(config, workdir: str, step: int = -1) -> tuple[int, str]:
  """(step, how it was chosen: "given" | "best" | "latest") of the checkpoint to evaluate."""
  best_metric = config.eval.metric if config.eval.every_steps else ""
  ckpt = checkpoint_lib.require_run(workdir)
  ckpt.close()
  ckpt = checkpoint_lib.Checkpointer(workdir, read_only=True, best_metric=best_metric,
                                     best_mode=config.eval.metric_mode)
  try:
    steps = ckpt.all_steps()
    if step >= 0:
      if step not in steps:
        raise UserError(f"{workdir} has no checkpoint at step {step} (it has {', '.join(map(str, sorted(steps)))})")
      return step, "given"
    if best_metric:
      best = ckpt.manager.best_step()
      if best is not None:
        return best, "best"
    return ckpt.latest_step(), "latest"
  finally:
    ckpt.close()


def restore_state(config, workdir: str, task, strategy, seq_len: int, step: int) -> TrainState:
  """A TrainState whose params are those saved at `step` (optimizer state left fresh)."""
  tx, schedule = optim.make_optimizer(config.train, max(config.train.steps, 1))

  def make_state(params, rng):
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), rng=rng,
                      skipped=jnp.zeros((), jnp.int32), task=task, tx=tx, schedule=schedule)

  state = strategy.init_state(make_state, lambda r: task.init(r, seq_len), jax.random.PRNGKey(0))
  state_dir = checkpoint_lib.Checkpointer(workdir, read_only=True).item_path(step, "state")
  saved = warm_start.saved_tree(state_dir)
  flat_saved = warm_start.flat_paths(saved["params"])
  flat_wanted = warm_start.flat_paths(state.params)
  for path, leaf in flat_wanted.items():
    if path not in flat_saved or tuple(flat_saved[path].shape) != tuple(leaf.shape):
      raise UserError(f"checkpoint step {step} of {workdir} does not fit this config at params/{path} "
                      f"(saved {tuple(flat_saved[path].shape) if path in flat_saved else 'nothing'}, "
                      f"config {tuple(leaf.shape)})")
  params = warm_start.restore_subtree(state_dir, {"params": state.params})["params"]
  return state.replace(params=params)


def qa_scores(config, workdir: str, task, state, strategy, tokenizer) -> dict:
  """SQuAD exact match and F1 of the post-processed predictions on the eval examples."""
  from jaxpretrain.data import features, labeled  # pylint: disable=import-outside-toplevel
  from jaxpretrain.tasks import qa_postprocess  # pylint: disable=import-outside-toplevel

  records, _, _ = labeled.read(config, "eval")
  arrays, feature_examples, offsets = features.encode_qa(records, tokenizer, config.data.seq_len,
                                                         config.data.doc_stride)
  batch_size = config.eval.batch_size or config.train.batch_size
  predict = jax.jit(task.predict)
  starts, ends = [], []
  for batch in labeled.padded_batches(arrays, batch_size):
    start, end = predict(state.params, strategy.put_batch(batch))
    starts.append(np.asarray(start))
    ends.append(np.asarray(end))
  n = len(feature_examples)
  answers = qa_postprocess.best_answers([r["context"] for r in records], feature_examples, offsets,
                                        np.concatenate(starts)[:n], np.concatenate(ends)[:n], n_best=task.n_best,
                                        max_answer_length=task.max_answer_length)
  return qa_postprocess.squad_scores(answers, [r["answers"] for r in records])


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
  chosen, how = pick_step(config, workdir, step)
  strategy = strategy_lib.create(config.mesh)
  if config.task.name in LABELED:
    from jaxpretrain.data.labeled import build_labeled  # pylint: disable=import-outside-toplevel
    data = build_labeled(config, workdir, with_train=False)
  elif config.task.name == "translation":
    from jaxpretrain.data.translation import build_translation  # pylint: disable=import-outside-toplevel
    data = build_translation(config, workdir, with_train=False)
  else:
    data = registry.build_data(config, workdir)
  task = registry.build_task(config, model_config, data)
  state = restore_state(config, workdir, task, strategy, data.seq_len, chosen)
  eval_batches = data.eval_batches()
  if not eval_batches:
    raise UserError(f"no evaluation data for {workdir}: set data.eval")
  from jaxpretrain.train.loop import evaluate as evaluate_batches  # pylint: disable=import-outside-toplevel
  metrics = evaluate_batches(state, strategy.compile_eval_step(), strategy, eval_batches, config.train.seed)
  if config.task.name == "qa":
    metrics.update(qa_scores(config, workdir, task, state, strategy, data.tokenizer))
  if config.task.name == "translation":
    from jaxpretrain.tasks.translation import translation_scores  # pylint: disable=import-outside-toplevel
    metrics.update(translation_scores(config, state.params, model_config, data.tokenizer))
  result = {**metrics, "step": int(chosen), "checkpoint": how,
            "data": data.info.get("eval", config.data.eval or config.data.train)}
  if data.info.get("eval_examples") is not None:
    result["examples"] = data.info["eval_examples"]
  if jax.process_index() == 0:
    path = os.path.join(workdir, "eval.json")
    with open(path + ".tmp", "w") as f:
      json.dump(result, f, indent=2, sort_keys=True)
    os.replace(path + ".tmp", path)
  return result
