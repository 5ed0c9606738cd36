"""NVML energy accounting of `bench` (with a stand-in for nvidia-ml-py: no GPU needed)."""

import sys
import types

import pytest

from jaxpretrain.commands.bench import power


def _fake_nvml(counters):
  """A pynvml stand-in whose boards' energy counters (mJ) advance by `counters[i]` per read."""
  state = {i: 0 for i in range(len(counters))}

  def energy(handle):
    state[handle] += counters[handle]
    return state[handle]

  return types.SimpleNamespace(
    nvmlInit=lambda: None,
    nvmlDeviceGetHandleByIndex=lambda i: i,
    nvmlDeviceGetTotalEnergyConsumption=energy,
    nvmlDeviceGetCount=lambda: len(counters),
  )


def test_energy_is_summed_over_boards_and_regions(monkeypatch):
  monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml([1000, 3000]))  # +1 J and +3 J per read
  monkeypatch.setattr(power, "_visible_indices", lambda nvml: [0, 1])
  meter = power.EnergyMeter()
  assert meter.available
  for _ in range(2):
    with meter.region():
      pass
  result = meter.result()
  assert result["joules"] == pytest.approx(2 * (1 + 3))  # each region: one read before, one after
  assert result["avg_power_w"] == pytest.approx(result["joules"] / meter.seconds)


def test_without_nvml_nothing_is_reported(monkeypatch):
  monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
  meter = power.EnergyMeter()
  with meter.region():
    pass
  assert not meter.available and meter.result() == {}


def test_cuda_visible_devices_select_the_nvml_boards(monkeypatch):
  monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
  monkeypatch.setattr(power.jax, "local_devices", lambda: [types.SimpleNamespace(platform="gpu")] * 2)
  assert power._visible_indices(_fake_nvml([0] * 8)) == [2, 5]
