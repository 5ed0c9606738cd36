"""Training throughput for the metrics rows: tokens/s, data wait, TFLOP/s and MFU since the last restart.

Tokens are positions of the batches as they ran (rows × length of each step's `input_ids`, padding
included, every micro-batch of an accumulated step), so a run whose batches change length is
counted step by step. TFLOP/s are model FLOPs (`flops.task_flops_per_token` at each batch's length,
the formula `bench` uses) on those positions per second; MFU divides them by the peak FLOP/s of
all the run's devices (`peak.peak_flops`). Real (non-padding) tokens are not what MFU counts: the
standard definition takes the FLOPs of the padded shape the model computed.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Throughput:
  """Counts training steps between restarts; the loop restarts it after compilation, after every
  logged row and after evaluating or saving, so that only training steps count."""

  def __init__(self, wait_seconds: Callable[[], float], flops_per_token: Callable[[int], float], peak_flops: float):
    """Starts counting.

    Args:
      wait_seconds: the prefetcher's total seconds spent waiting for data so far.
      flops_per_token: training FLOPs per token at a sequence length.
      peak_flops: the devices' peak FLOP/s together; 0 leaves `mfu` out of the rates.
    """
    self._wait_seconds, self._flops_per_token, self.peak_flops = wait_seconds, flops_per_token, peak_flops
    self._per_length: dict[int, float] = {}
    self.restart()

  def restart(self) -> None:
    self.start, self.steps, self.tokens, self.flops = time.perf_counter(), 0, 0, 0.0
    self.wait_at_start = self._wait_seconds()

  def count(self, input_ids) -> None:
    """One more training step, on a batch whose `input_ids` (any array: only its shape is read) is given."""
    length = int(input_ids.shape[-1])
    if length not in self._per_length:
      self._per_length[length] = self._flops_per_token(length)
    self.steps += 1
    self.tokens += int(input_ids.size)
    self.flops += int(input_ids.size) * self._per_length[length]

  def rates(self) -> dict:
    """`tokens_per_s`, `data_wait_share`, `tflops` and `mfu` since the restart ({} before any step)."""
    if not self.steps:
      return {}
    elapsed = max(time.perf_counter() - self.start, 1e-9)
    rates = {
      "tokens_per_s": self.tokens / elapsed,
      "data_wait_share": (self._wait_seconds() - self.wait_at_start) / elapsed,
      "tflops": self.flops / elapsed / 1e12,
    }
    if self.peak_flops > 0:
      rates["mfu"] = self.flops / elapsed / self.peak_flops
    return rates
