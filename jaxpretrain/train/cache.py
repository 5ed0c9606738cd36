"""jaxpretrain's cache on this machine: XLA's persistent compilation cache, and where it lives.

`train.compilation_cache_dir` (default `auto`) turns on JAX's persistent compilation cache: the
compiled train and eval steps (every program that takes at least a second to compile, JAX's
`jax_persistent_cache_min_compile_time_secs`) are written there, and a later run of the same
config, a resume included, loads them instead of compiling. `auto` is `cache_root()/xla`, unless
`JAX_COMPILATION_CACHE_DIR` already chose a directory; "" turns the cache off. The cache is
process-wide (one JAX setting), so the last run set up in a process decides it.

The cache is trusted code: never point it at a directory that others can write.
"""

from __future__ import annotations

import os

import jax

from jaxpretrain import paths
from jaxpretrain.errors import UserError, warn

AUTO = "auto"


def cache_root() -> str:
  """jaxpretrain's cache directory: `$JAXPRETRAIN_CACHE`, else `$XDG_CACHE_HOME/jaxpretrain`, else
  `~/.cache/jaxpretrain` (not created here)."""
  if os.environ.get("JAXPRETRAIN_CACHE"):
    return os.path.expanduser(os.environ["JAXPRETRAIN_CACHE"])
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "jaxpretrain")


def compilation_cache_dir(setting: str) -> str:
  """The directory `train.compilation_cache_dir=setting` stands for ("" = off).

  Args:
    setting: `auto`, "" or a directory (`~` is expanded).

  Returns:
    An absolute directory, or "" for no cache.
  """
  if setting == AUTO:
    return os.environ.get("JAX_COMPILATION_CACHE_DIR") or os.path.join(cache_root(), "xla")
  if paths.is_remote(setting):  # JAX reads and writes gs:// caches itself
    return setting
  return os.path.abspath(os.path.expanduser(setting)) if setting else ""


def _unusable(path: str) -> str | None:
  """Why JAX could not keep its cache in local directory `path` (creating it if missing), or None."""
  if paths.is_remote(path):
    return None
  if os.path.exists(path) and not os.path.isdir(path):
    return "is not a directory"
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    return f"cannot be created ({e.strerror})"
  if not os.access(path, os.W_OK | os.X_OK):
    return "is not writable"
  return None


def enable_compilation_cache(setting: str) -> str:
  """Points JAX's persistent compilation cache at `compilation_cache_dir(setting)`, or turns it off.

  Programs compiled after this call read and write the cache; switching to another directory (a
  second run in the same process) takes effect at the next compilation.

  Args:
    setting: `train.compilation_cache_dir`.

  Returns:
    The directory in use ("" = off).

  Raises:
    UserError: a directory named by `setting` is a file, or cannot be created or written (with
      `auto`, a warning, and the run compiles without a cache).
  """
  from jax.experimental.compilation_cache import compilation_cache

  path = compilation_cache_dir(setting)
  problem = _unusable(path) if path else None
  if problem and setting != AUTO:
    raise UserError(
      f'train.compilation_cache_dir={setting}: {path} {problem}; name a directory you can write, or "" for no cache'
    )
  if problem:  # the default place (a read-only home, say): a run never fails for want of a cache
    warn(f"the compilation cache {path} {problem}: compiling without it (train.compilation_cache_dir names another)")
    path = ""
  if (jax.config.jax_compilation_cache_dir or "") != path or jax.config.jax_enable_compilation_cache != bool(path):
    jax.config.update("jax_enable_compilation_cache", bool(path))
    jax.config.update("jax_compilation_cache_dir", path or None)
    compilation_cache.reset_cache()  # JAX opens the cache once; make it open the new one
  return path
