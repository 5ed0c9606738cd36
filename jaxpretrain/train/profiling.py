"""A `jax.profiler` trace of chosen training steps: `profile.start_step`, `profile.num_steps`, `profile.processes`.

Steps are numbered as in metrics.jsonl (step N is the update whose row says `"step": N`). The
trace of steps start_step .. start_step + num_steps - 1 goes to WORKDIR/profile (with several
processes, WORKDIR/profile/process_I): `plugins/profile/<time>/<host>.xplane.pb` for TensorBoard's
profile plugin or XProf, and `perfetto_trace.json.gz` for Perfetto and
`benchmarks/trace_summary.py`. Each traced step is a `StepTraceAnnotation("train", step_num=N)`,
which the profile tools read as step boundaries. The device finishes the steps before the window
before tracing starts, and the window's last step before it stops, so the trace holds exactly the
window's work. Only the processes in `profile.processes` trace; the others train as usual.
"""

from __future__ import annotations

import contextlib

import jax

from jaxpretrain import paths
from jaxpretrain.errors import warn


def profile_dir(workdir: str) -> str:
  """Where this process's trace goes: WORKDIR/profile, or WORKDIR/profile/process_I with several."""
  base = paths.join(workdir, "profile")
  return paths.join(base, f"process_{jax.process_index()}") if jax.process_count() > 1 else base


class ProfileWindow:
  """Starts and stops the trace around the window's steps; does nothing when the window is off."""

  def __init__(self, profile_config, workdir: str, *, first_step: int, total_steps: int):
    """Plans the window.

    Args:
      profile_config: the `profile` section (`start_step`, `num_steps`, `processes`).
      workdir: the run directory.
      first_step: the step this run starts from (a resumed run traces what is left of the window).
      total_steps: the run's last step.
    """
    self.start = profile_config.start_step
    self.stop = profile_config.start_step + profile_config.num_steps  # the first step after the window
    self.enabled = profile_config.num_steps > 0 and jax.process_index() in list(profile_config.processes)
    self.directory = profile_dir(workdir)
    self._stage = contextlib.ExitStack()
    self._tracing = False
    self._previous = None  # the last step's outputs: what the device must finish before tracing starts
    if self.enabled and (self.start > total_steps or self.stop - 1 <= first_step):
      warn(
        f"profile window steps {self.start}-{self.stop - 1} lies outside the steps this run trains "
        f"({first_step + 1}-{total_steps}): nothing is traced",
        kind="note",
      )
      self.enabled = False

  def in_window(self, step: int) -> bool:
    return self.enabled and self.start <= step < self.stop

  @contextlib.contextmanager
  def step(self, step: int):
    """Wraps the dispatch of training step `step` (metrics numbering): starts the trace at the
    window's first step, and annotates each step in the window."""
    if not self.in_window(step):
      yield
      return
    if not self._tracing:
      jax.block_until_ready(self._previous)
      local = self._stage.enter_context(paths.staged(self.directory))  # a remote workdir: copied up at the end
      jax.profiler.start_trace(local, create_perfetto_trace=True)
      self._tracing = True
    with jax.profiler.StepTraceAnnotation("train", step_num=step):
      yield

  def finished(self, step: int, outputs) -> None:
    """After step `step` was dispatched with `outputs`: stops the trace once the window's last step is done."""
    self._previous = outputs
    if self._tracing and step >= self.stop - 1:
      jax.block_until_ready(outputs)
      self.close()

  def close(self) -> None:
    """Stops a trace still running (the run ended inside the window, or failed) and writes it."""
    if self._tracing:
      self._tracing = False
      try:
        jax.profiler.stop_trace()
      finally:
        self._stage.close()
      self.enabled = False
