"""The peak FLOP/s MFU divides by (training rows and `bench`): an override, a datasheet table, or a measurement.

In order: `train.peak_tflops` when set (per device); else the table below, by the device's kind
and the model's compute dtype (dense peaks from the vendors' datasheets, no sparsity); else (CPU,
or an accelerator not in the table) the square-matmul ceiling `flops.matmul_peak_flops` measures
(`bench` reports it beside the peak as `measured_peak_tflops`). A measured ceiling is kept for
the process and on disk in `cache.cache_root()/peak_flops.json`, keyed by the device (on CPU: the
processor model and core count) and dtype, so runs after the first skip the measurement; delete
the file to measure again.

float32 figures are what XLA's default matmul precision reaches: TF32 tensor cores on NVIDIA
Ampere and later, bf16 passes on TPUs (so their float32 peak is the bfloat16 one).
"""

from __future__ import annotations

import json
import os
import platform

import jax

from jaxpretrain.train import cache, flops

# (substring of `device_kind`, bfloat16/float16 TFLOP/s, float32 TFLOP/s), per JAX device; the
# first match wins, so a specific kind comes before the family it belongs to.
PEAK_TFLOPS: tuple[tuple[str, float, float], ...] = (
  ("H100 PCIe", 756.0, 378.0),
  ("H100 NVL", 835.5, 417.5),
  ("H100", 989.4, 494.7),  # SXM (80GB HBM3)
  ("GH200", 989.4, 494.7),
  ("H200", 989.4, 494.7),
  ("H800", 989.4, 494.7),
  ("B200", 2250.0, 1100.0),
  ("A100", 312.0, 156.0),
  ("A800", 312.0, 156.0),
  ("L40S", 362.1, 183.0),
  ("L4", 121.0, 60.0),
  ("V100", 125.0, 15.7),  # float16 tensor cores (no bfloat16)
  ("T4", 65.0, 8.1),
  ("TPU v6 lite", 918.0, 918.0),  # v6e
  ("TPU v5 lite", 197.0, 197.0),  # v5e
  ("TPU v5p", 459.0, 459.0),
  ("TPU v5", 459.0, 459.0),  # v5p reports "TPU v5"
  ("TPU v4", 275.0, 275.0),
  ("TPU v3", 61.5, 61.5),  # per core (a JAX device); 123 per chip
  ("TPU v2", 22.5, 22.5),
)

_MEASURED: dict[str, float] = {}  # this process's measurements, by `_device_key`


def table_flops(device_kind: str, dtype) -> float | None:
  """The datasheet peak FLOP/s of one device of `device_kind` in `dtype`, or None when unknown."""
  sixteen_bit = jax.numpy.dtype(dtype).itemsize == 2
  for pattern, half, single in PEAK_TFLOPS:
    if pattern.lower() in device_kind.lower():
      return (half if sixteen_bit else single) * 1e12
  return None


def _device_key(dtype) -> str:
  device = jax.devices()[0]
  kind = device.device_kind
  if device.platform == "cpu":  # "cpu" names no machine: the processor model and cores do
    kind = f"cpu {_cpu_model()} x{os.cpu_count()}"
  return f"{kind} | {jax.numpy.dtype(dtype).name}"


def _cpu_model() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def measured_flops(dtype) -> float:
  """The matmul ceiling of one device in `dtype` (CPU: of the process), measured once per machine.

  Args:
    dtype: the compute dtype.

  Returns:
    FLOP/s, from this process's or the disk cache's earlier measurement, else measured now.
  """
  key = _device_key(dtype)
  if key in _MEASURED:
    return _MEASURED[key]
  path = os.path.join(cache.cache_root(), "peak_flops.json")
  saved = _read(path)
  if key not in saved:
    saved = {**_read(path), key: flops.matmul_peak_flops(dtype)}
    try:
      os.makedirs(os.path.dirname(path), exist_ok=True)
      with open(path + f".{os.getpid()}.tmp", "w") as f:
        json.dump(saved, f, indent=1, sort_keys=True)
      os.replace(path + f".{os.getpid()}.tmp", path)
    except OSError:  # a read-only home: measure again next time rather than fail the run
      pass
  _MEASURED[key] = float(saved[key])
  return _MEASURED[key]


def _read(path: str) -> dict:
  try:
    with open(path) as f:
      saved = json.load(f)
  except (OSError, ValueError):
    return {}
  return {k: v for k, v in saved.items() if isinstance(v, (int, float)) and v > 0} if isinstance(saved, dict) else {}


def counted_devices() -> int:
  """How many times one device's peak counts: every device on accelerators, one per process on CPU
  (CPU devices share the process's thread pool, which one matmul measurement already uses up)."""
  return jax.process_count() if jax.default_backend() == "cpu" else jax.device_count()


def peak_flops(dtype, override_tflops: float = 0.0) -> tuple[float, str]:
  """The peak FLOP/s of all the run's devices together, and where the figure came from.

  Args:
    dtype: the model's compute dtype.
    override_tflops: `train.peak_tflops` (per device; 0 = look it up or measure).

  Returns:
    (FLOP/s, source): source is "train.peak_tflops", "datasheet" or "measured". CPU devices share
    one thread pool, so on CPU one process's ceiling counts once per process, not per device.
  """
  devices = counted_devices()
  if override_tflops > 0:
    return override_tflops * 1e12 * devices, "train.peak_tflops"
  if jax.default_backend() != "cpu":
    listed = table_flops(jax.devices()[0].device_kind, dtype)
    if listed is not None:
      return listed * devices, "datasheet"
  return measured_flops(dtype) * devices, "measured"
