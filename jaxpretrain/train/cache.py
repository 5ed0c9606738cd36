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
  return os.path.abspath(os.path.expanduser(setting)) if setting else ""


def enable_compilation_cache(setting: str) -> str:
  """Points JAX's persistent compilation cache at `compilation_cache_dir(setting)`, or turns it off.

  Programs compiled after this call read and write the cache; switching to another directory (a
  second run in the same process) takes effect at the next compilation.

  Args:
    setting: `train.compilation_cache_dir`.

  Returns:
    The directory in use ("" = off).
  """
  from jax.experimental.compilation_cache import compilation_cache

  path = compilation_cache_dir(setting)
  if (jax.config.jax_compilation_cache_dir or "") != path or jax.config.jax_enable_compilation_cache != bool(path):
    jax.config.update("jax_enable_compilation_cache", bool(path))
    jax.config.update("jax_compilation_cache_dir", path or None)
    compilation_cache.reset_cache()  # JAX opens the cache once; make it open the new one
  return path
