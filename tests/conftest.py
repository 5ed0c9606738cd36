"""Test setup: 8 fake CPU devices (set before jax is imported anywhere)."""

import os
import sys

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _cache_in_tmp(tmp_path_factory):
  """jaxpretrain's cache (the XLA compilation cache, measured peak FLOP/s) in a temporary directory
  for the session, never the user's ~/.cache/jaxpretrain."""
  os.environ["JAXPRETRAIN_CACHE"] = str(tmp_path_factory.mktemp("jaxpretrain_cache"))
  os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)


def _memory_mappings() -> int:
  """How many memory mappings this process holds (Linux; 0 where /proc says nothing)."""
  try:
    with open("/proc/self/maps", "rb") as f:
      return sum(1 for _ in f)
  except OSError:
    return 0


@pytest.fixture(autouse=True)
def _release_compiled_programs():
  """A pytest worker compiles thousands of programs, and JAX keeps some of them for the whole process
  (eager ops per shape; anything `jax.pmap`ped). Each holds memory mappings, and a process reaching
  the kernel's `vm.max_map_count` (65530 by default) crashes inside XLA's CPU compiler with a
  segfault: drop JAX's caches well before that."""
  yield
  if "jax" in sys.modules and _memory_mappings() > 30_000:
    sys.modules["jax"].clear_caches()


@pytest.fixture(autouse=True)
def _compilation_cache_off_between_tests():
  """A run turns JAX's persistent compilation cache on for its whole process (train/cache.py): turn it
  off again after each test, so that no test compiles through a cache an earlier one happened to open."""
  yield
  cache = sys.modules.get("jaxpretrain.train.cache")
  if cache is not None:
    cache.enable_compilation_cache("")


@pytest.fixture(scope="session")
def tiny_prepared(tmp_path_factory):
  """A small embedded corpus prepared once per session (seq_len 32, vocab 512): shared by the
  end-to-end tests so each run compiles a tiny model instead of re-preparing data."""
  from jaxpretrain.data.pretrain import prepare

  out = str(tmp_path_factory.mktemp("prepared") / "data")
  prepare.prepare(
    "embedded", out, seq_len=32, vocab_size=512, eval_fraction=0.05, embedded_documents=400, records_per_shard=200
  )
  return out


@pytest.fixture(scope="session")
def gpt_prepared(tmp_path_factory):
  """400 embedded documents packed as [BOS] doc [EOS] rows of 32 tokens (vocabulary 512): the decoders' corpus."""
  from jaxpretrain.data.pretrain import prepare

  out = str(tmp_path_factory.mktemp("gpt_prepared") / "data")
  prepare.prepare(
    "embedded",
    out,
    seq_len=32,
    vocab_size=512,
    eval_fraction=0.05,
    embedded_documents=400,
    records_per_shard=200,
    packing="gpt",
  )
  return out


def pytest_configure(config):
  config.addinivalue_line(
    "markers",
    "starts_first: a test of several CPU-minutes, started before the rest "
    "so that under `-n 2` the other worker runs the suite meanwhile",
  )


def pytest_collection_modifyitems(items):
  items.sort(key=lambda item: item.get_closest_marker("starts_first") is None)  # stable: order kept otherwise
