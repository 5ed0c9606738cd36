"""The rows of `jaxpretrain checkpoints`: every step directory of a run, read from disk without orbax.

A step whose save finished but whose files were truncated or deleted afterwards is "corrupt"
(`restore.step_problem`, which reads the state's index but no arrays), as is one set aside as
`<step>.corrupt` by a resume.
"""

from __future__ import annotations

import json
import os

from jaxpretrain import paths
from jaxpretrain.checkpoint.manager import ITEMS, checkpoint_dir
from jaxpretrain.checkpoint.restore import step_problem
from jaxpretrain.errors import UserError


def describe(workdir: str) -> list[dict]:
  """One row per step directory, for `jaxpretrain checkpoints`.

  Args:
    workdir: the run directory.

  Returns:
    Rows sorted by step: {"step", "complete", "bytes", "metrics", "time", "path", "state"
    ("complete" | "incomplete" | "corrupt" | "link"), "problem" (why it is corrupt or a link, or None)}.

  Raises:
    UserError: when `workdir` has no checkpoints directory.
  """
  root = checkpoint_dir(workdir)
  if not paths.isdir(root):
    raise UserError(f"no checkpoints in {workdir} (expected {root})")
  rows = []
  for name in paths.listdir(root):
    path = paths.join(root, name)
    step_text = name.split(".")[0]
    if not step_text.isdigit() or not paths.isdir(path):
      continue
    if os.path.islink(path):  # not read through: a run refuses to use it (see `Checkpointer`)
      problem = f"a symbolic link to {os.readlink(path)}"
      rows.append(
        {"step": int(step_text), "complete": False, "bytes": 0, "metrics": {}, "time": None, "path": path}
        | {"state": "link", "problem": problem}
      )
      continue
    size = paths.tree_size(path)
    complete = (
      name == step_text
      and paths.exists(paths.join(path, "_CHECKPOINT_METADATA"))
      and all(paths.isdir(paths.join(path, item)) for item in ITEMS)
    )
    problem = step_problem(path) if complete else None
    if problem:
      complete = False
    metrics, wall_time = {}, None
    meta_file = paths.join(path, "meta", "metadata")
    if complete and paths.exists(meta_file):
      try:
        meta = json.loads(paths.read_bytes(meta_file).decode("utf-8"))
        metrics, wall_time = meta.get("metrics", {}), meta.get("time")
      except (OSError, ValueError) as e:
        complete, problem = False, f"meta/metadata does not parse ({e})"
    rows.append(
      {
        "step": int(step_text),
        "complete": complete,
        "bytes": size,
        "metrics": metrics,
        "time": wall_time,
        "path": path,
        "state": "complete" if complete else ("corrupt" if problem or ".corrupt" in name else "incomplete"),
        "problem": problem,
      }
    )
  return sorted(rows, key=lambda r: (r["step"], r["path"]))
