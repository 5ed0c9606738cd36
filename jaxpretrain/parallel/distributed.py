"""Multi-host start-up: `jax.distributed.initialize` from flags or the environment."""
from __future__ import annotations

import os

import jax

from jaxpretrain.errors import UserError


def initialize(coordinator_address: str = "", num_processes: int = 0, process_id: int = -1) -> None:
  """Joins a multi-process run when flags or the environment ask for one; a no-op otherwise.

  Explicit flags win; else SLURM (several tasks) and Cloud TPU pods are detected by
  `jax.distributed.initialize()` itself. On CPU, gloo collectives are selected.

  Args:
    coordinator_address: host:port of process 0.
    num_processes: total processes.
    process_id: this process's index.
  """
  if coordinator_address:
    if num_processes < 1 or not 0 <= process_id < num_processes:
      raise UserError(f"--num_processes={num_processes} and --process_id={process_id} do not describe a "
                      f"process of the run")
    if jax.config.jax_platforms in (None, "", "cpu") or os.environ.get("JAX_PLATFORMS", "") == "cpu":
      jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address, num_processes=num_processes, process_id=process_id)
  elif int(os.environ.get("SLURM_NTASKS", "1")) > 1 or os.environ.get("TPU_WORKER_HOSTNAMES"):
    jax.distributed.initialize()
