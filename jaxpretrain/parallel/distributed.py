"""Multi-host start-up: `jax.distributed.initialize` from flags or the environment.

Every process of a multi-host run executes the same program; `initialize` must come before the
first use of devices. Process 0 then writes metrics, config and metadata; orbax coordinates
checkpoint writes; each process reads only its own rows of every batch (`data/pretrain/loader.py`).
"""

from __future__ import annotations

import os

import jax

from jaxpretrain.errors import UserError, first_line

AUTO = "auto"


def detected_cluster() -> str:
  """The multi-process launcher found in the environment: "slurm", "tpu" or "" (none)."""
  if int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_STEP_NODELIST" in os.environ:
    return "slurm"  # a job step (srun) with several tasks; jax reads the rest of SLURM_*
  if len(os.environ.get("TPU_WORKER_HOSTNAMES", "").split(",")) > 1:
    return "tpu"  # a multi-host Cloud TPU slice
  return ""


def initialize(coordinator_address: str = "", num_processes: int = 0, process_id: int = -1) -> None:
  """Joins a multi-process run when flags or the environment ask for one; a no-op otherwise.

  Explicit flags win. `coordinator_address="auto"`, a SLURM step with several tasks, or a
  multi-host Cloud TPU slice hand detection to `jax.distributed.initialize()` (which reads
  SLURM_* variables or the TPU metadata). CPU processes exchange data over gloo.

  Args:
    coordinator_address: host:port of process 0, "auto", or "" (detect from the environment).
    num_processes: total processes (with an explicit address).
    process_id: this process's index (with an explicit address).

  Raises:
    UserError: for flags that do not describe a process of a run, or a failed connection.
  """
  if jax.distributed.is_initialized():
    return
  explicit = bool(coordinator_address) and coordinator_address != AUTO
  if explicit and (num_processes < 1 or not 0 <= process_id < num_processes):
    raise UserError(
      f"--num_processes={num_processes} and --process_id={process_id} do not describe a "
      f"process of the run (need 0 <= process_id < num_processes)"
    )
  if not explicit and coordinator_address != AUTO and not detected_cluster():
    return
  # Only the CPU backend reads this; it lets CPU processes run collectives (tests, CPU clusters).
  previous = jax.config.jax_cpu_collectives_implementation
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  try:
    if explicit:
      jax.distributed.initialize(coordinator_address, num_processes=num_processes, process_id=process_id)
    else:
      jax.distributed.initialize()
  except (ValueError, RuntimeError) as e:  # no cluster detected, coordinator unreachable, ...
    jax.config.update("jax_cpu_collectives_implementation", previous)  # still one process: as before
    message = first_line(e)
    hint = (
      ""
      if explicit
      else (
        " (no SLURM step or Cloud TPU slice found; pass --coordinator_address=HOST:PORT "
        "--num_processes=N --process_id=I)"
      )
    )
    raise UserError(f"jax.distributed.initialize failed: {message}{hint}") from None
