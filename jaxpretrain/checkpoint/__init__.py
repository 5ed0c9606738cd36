"""Orbax checkpoints of a run: TrainState, every process's data iterator state, tokenizer, metadata.

Layout: WORKDIR/checkpoints/<step>/{state, data, tokenizer, meta}.

- `manager`: `Checkpointer` (asynchronous, atomic saves; restoring the latest step that loads),
  `require_run`, `abstract_arrays`, `tokenizer_files`, `checkpoint_dir`, `item_path`.
- `restore`: reading saved steps: `read_step` (given, else best, else the newest that loads: the
  one way every reader picks a step), `resolve_step`, `step_problem` (a truncated or partly deleted
  step), `check_shapes`, `restore_subtree` (onto shardings), `restore_params` (numpy), `saved_tree`,
  `flat_leaves`.
- `listing`: `describe`, the rows of `jaxpretrain checkpoints`.
"""

from jaxpretrain.checkpoint.listing import describe
from jaxpretrain.checkpoint.manager import (
  ITEMS,
  Checkpointer,
  IteratorState,
  abstract_arrays,
  checkpoint_dir,
  item_path,
  require_run,
  tokenizer_files,
)
from jaxpretrain.checkpoint.restore import (
  check_shapes,
  does_not_fit,
  flat_leaves,
  read_step,
  resolve_step,
  restore_params,
  restore_subtree,
  saved_tree,
  step_problem,
)

__all__ = [
  "ITEMS",
  "Checkpointer",
  "IteratorState",
  "abstract_arrays",
  "check_shapes",
  "checkpoint_dir",
  "describe",
  "does_not_fit",
  "flat_leaves",
  "item_path",
  "read_step",
  "require_run",
  "resolve_step",
  "restore_params",
  "restore_subtree",
  "saved_tree",
  "step_problem",
  "tokenizer_files",
]
