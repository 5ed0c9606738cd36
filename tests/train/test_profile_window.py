"""`profile.*`: a jax.profiler trace of exactly the asked training steps, in WORKDIR/profile."""

import gzip
import json

import pytest

from jaxpretrain import config_schema
from jaxpretrain.errors import UserError
from jaxpretrain.train import loop
from jaxpretrain.train.metrics import read_metrics
from tests.run_configs import tiny_pretrain_config


def _traced_steps(profile_dir):
  """The step numbers of the "train" step annotations in the one Perfetto trace under `profile_dir`."""
  (trace,) = profile_dir.glob("plugins/profile/*/perfetto_trace.json.gz")
  events = json.loads(gzip.decompress(trace.read_bytes()))
  events = events["traceEvents"] if isinstance(events, dict) else events
  steps = [e["args"]["step_num"] for e in events if e.get("name") == "train" and "step_num" in e.get("args", {})]
  return sorted(int(s) for s in steps)


def _losses(workdir):
  return [(r["step"], r["loss"]) for r in read_metrics(str(workdir)) if "split" not in r]


def test_trace_holds_exactly_the_window_and_training_is_unchanged(tmp_path, tiny_prepared):
  window = {"train.steps": 7, "profile.start_step": 3, "profile.num_steps": 3}
  loop.run(tiny_pretrain_config(tiny_prepared, **window), str(tmp_path / "traced"))
  profile = tmp_path / "traced" / "profile"
  assert list(profile.glob("plugins/profile/*/*.xplane.pb"))  # TensorBoard's profile plugin / XProf
  assert _traced_steps(profile) == [3, 4, 5]
  loop.run(tiny_pretrain_config(tiny_prepared, **{"train.steps": 7}), str(tmp_path / "plain"))
  assert not (tmp_path / "plain" / "profile").exists()  # off by default
  assert _losses(tmp_path / "traced") == _losses(tmp_path / "plain")


def test_only_the_chosen_processes_trace(tmp_path, tiny_prepared):
  config = tiny_pretrain_config(
    tiny_prepared, **{"train.steps": 2, "profile.start_step": 1, "profile.num_steps": 1, "profile.processes": [1]}
  )
  loop.run(config, str(tmp_path / "run"))
  assert not (tmp_path / "run" / "profile").exists()  # this is process 0


def test_window_keys_are_checked():
  config = tiny_pretrain_config("unused")
  config.profile.processes = [0, -1]
  with pytest.raises(UserError, match=r"profile.processes=\[0, -1\]: expected a list of process indices"):
    config_schema.validate(config)
  config.profile.processes, config.profile.start_step = [0], 0
  with pytest.raises(UserError, match="profile.start_step=0 must be an integer >= 1"):
    config_schema.validate(config)
