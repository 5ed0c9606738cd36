"""Board energy of the local NVIDIA GPUs over timed regions, from NVML (nvidia-ml-py).

Optional by design: without the `pynvml` module, without NVIDIA GPUs, or when the driver
refuses the query, `EnergyMeter.available` is False and the caller reports nothing.
"""

from __future__ import annotations

import contextlib
import os
import time

import jax


class EnergyMeter:
  """Adds up each GPU's cumulative energy counter (millijoules) over one or more regions.

  The counter integrates board power in the driver, so the average over a region is exact,
  unlike instantaneous power sampled from a thread.
  """

  def __init__(self):
    self.joules, self.seconds = 0.0, 0.0
    self._handles = []
    try:
      import pynvml  # nvidia-ml-py: the `gpu` extra

      pynvml.nvmlInit()
      self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in _visible_indices(pynvml)]
      for h in self._handles:
        pynvml.nvmlDeviceGetTotalEnergyConsumption(h)
      self._nvml = pynvml
    except Exception:  # ImportError, NVMLError (no driver, no GPU, query unsupported)
      self._handles = []

  @property
  def available(self) -> bool:
    return bool(self._handles)

  def _read_mj(self) -> float:
    return float(sum(self._nvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in self._handles))

  @contextlib.contextmanager
  def region(self):
    """Counts the energy and time spent inside the `with` block (nothing when unavailable)."""
    if not self.available:
      yield
      return
    start_mj, start_s = self._read_mj(), time.perf_counter()
    yield
    self.joules += (self._read_mj() - start_mj) / 1000.0
    self.seconds += time.perf_counter() - start_s

  def result(self) -> dict:
    """{"avg_power_w", "joules"} over all regions, summed over the GPUs; {} when unavailable."""
    if not self.available or self.seconds <= 0:
      return {}
    return {"avg_power_w": self.joules / self.seconds, "joules": self.joules}


def _visible_indices(pynvml) -> list[int]:
  """NVML indices of the GPUs this process uses (NVML numbers every board, ignoring
  CUDA_VISIBLE_DEVICES, so integer entries of that variable are honoured here)."""
  count = len([d for d in jax.local_devices() if d.platform == "gpu"])
  visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
  if visible and all(x.strip().isdigit() for x in visible.split(",")):
    return [int(x) for x in visible.split(",")][:count]
  return list(range(min(count, pynvml.nvmlDeviceGetCount())))
