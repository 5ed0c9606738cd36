"""Every config key is checked against `config_schema.KEYS` before a command writes anything."""

import os

import pytest

from jaxpretrain import cli, config_schema, demo
from jaxpretrain import config as config_lib
from jaxpretrain.errors import UserError

SHIPPED = sorted(  # with the suites' subdirectories: glue/cola, ...
  os.path.relpath(os.path.join(directory, name), config_lib.CONFIG_DIR)[:-3]
  for directory, _, names in os.walk(config_lib.CONFIG_DIR)
  for name in names
  if name.endswith(".py") and not name.startswith("_")
)


def _config(*overrides, name="tiny"):
  config = config_lib.load(name)
  config_lib.apply_overrides(config, overrides)
  return config


def _rejects(config, *expected):
  with pytest.raises(UserError) as info:
    config_schema.validate(config)
  message = str(info.value)
  assert "\n" not in message
  for text in expected:
    assert text in message, message
  return message


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_config_validates(name):
  config_schema.validate(config_lib.load(name))


def test_the_table_covers_every_default_key_and_the_demo_keys():
  keys = set(config_schema.flatten(config_lib.defaults()))
  demo_keys = {k for k in config_schema.flatten(config_lib.load("demo")) if k.startswith("demo.")}
  assert set(config_schema.KEYS) == keys | demo_keys
  assert all(spec.doc and spec.allowed() for spec in config_schema.KEYS.values())


def test_a_default_key_missing_from_the_table_fails_validation(monkeypatch):
  config = config_lib.defaults()
  config.train.brand_new_key = 3
  _rejects(config, "unknown config key: train.brand_new_key")


@pytest.mark.parametrize(
  "key,bad,choices",
  [
    ("train.schedule", "cosine_decay", "choose linear, cosine or constant"),
    ("task.pooling", "max", "choose cls or mean"),
    ("task.head_positions", "mask", "choose masked or all"),
    ("data.packing", "t5", "choose auto, bert or gpt"),
    ("eval.metric_mode", "maximize", "choose min or max"),
    ("train.on_nonfinite", "ignore", "choose raise or skip"),
    ("mesh.strategy", "spmd", "choose jit or pmap"),
    ("model.remat", "some", "choose none, dots or full"),
    (
      "task.name",
      "seq2seq",
      "choose mlm, causal_lm, classification, regression, token_classification, qa or translation",
    ),
  ],
)
def test_a_bad_choice_names_the_key_the_value_and_the_choices(key, bad, choices):
  assert _rejects(_config(f"{key}={bad}"), f"{key}={bad!r}", choices) == f"{key}={bad!r}; {choices}"


@pytest.mark.parametrize(
  "override,message",
  [
    ("checkpoint.keep=0", "checkpoint.keep=0 must be an integer >= 1"),
    ("checkpoint.keep=-1", "checkpoint.keep=-1 must be an integer >= 1"),
    ("train.batch_size=0", "train.batch_size=0 must be an integer >= 1"),
    ("train.learning_rate=0", "train.learning_rate=0.0 must be a number > 0"),
    ("train.learning_rate=nan", "train.learning_rate=nan must be a number > 0"),
    ("task.mask_prob=1.5", "task.mask_prob=1.5 must be a number in (0, 1]"),
    ("model.hidden_dropout_prob=1", "model.hidden_dropout_prob=1.0 must be a number in [0, 1)"),
    ("data.seq_len=1", "data.seq_len=1 must be an integer >= 8"),
    ("eval.every_steps=-5", "eval.every_steps=-5 must be an integer >= 1, or 0 (= only at the end)"),
    ("checkpoint.every_steps=-1", "checkpoint.every_steps=-1 must be an integer >= 1, or 0 (= only the final step)"),
    (
      "task.max_predictions=-1",
      "task.max_predictions=-1 must be an integer >= 1, or 0 (= 5 std above the expected count)",
    ),
    ("mesh.fsdp=0", "mesh.fsdp=0 must be an integer >= 1, or -1 (= the devices the other axes leave)"),
    ("mesh.data=-2", "mesh.data=-2 must be an integer >= 1, or -1 (= the devices the other axes leave)"),
    ("init_step=-2", "init_step=-2 must be an integer >= 0, or -1 (= the latest)"),
    ("train.seed=-1", "train.seed=-1 must be an integer in [0, 2147483647]"),
    ("data.eval_fraction=1", "data.eval_fraction=1.0 must be a number in [0, 1)"),
    ("train.log_every=0", "train.log_every=0 must be an integer >= 1"),
    ("task.num_labels=1", "task.num_labels=1 must be an integer >= 2, or 0 (= inferred from the training data)"),
    ("data.train=", "data.train='' must be non-empty text"),
  ],
)
def test_numeric_ranges_are_enforced(override, message):
  assert _rejects(_config(override)) == message


@pytest.mark.parametrize(
  "override,value",
  [
    ("eval.every_steps=0", 0),
    ("checkpoint.every_steps=0", 0),
    ("mesh.fsdp=-1", -1),
    ("mesh.data=4", 4),
    ("task.max_predictions=0", 0),
    ("train.max_grad_norm=0", 0.0),
    ("data.eval_fraction=0", 0.0),
    ("model.hidden_dropout_prob=0", 0.0),
    ("task.mask_prob=1", 1.0),
    ("init_step=0", 0),
  ],
)
def test_edges_and_special_values_are_accepted(override, value):
  config = _config(override, *(["mesh.data=1"] if override == "mesh.fsdp=-1" else []))
  config_schema.validate(config)
  assert config_schema.flatten(config)[override.split("=")[0]] == value


@pytest.mark.parametrize(
  "overrides,message",
  [
    (["data.seq_len=256"], "data.seq_len=256 exceeds the model's 128 positions"),
    (["train.grad_accum_steps=5"], "train.batch_size=32 is not divisible by train.grad_accum_steps=5"),
    (["model.num_attention_heads=3"], "model.hidden_size=128 is not divisible by model.num_attention_heads=3"),
    (["task.mask_token_prob=0.8", "task.random_token_prob=0.3"], "must be at most 1"),
    (["model.position_offset=128"], "model.position_offset=128 must be in [0, model.max_position_embeddings=128)"),
    (["mesh.fsdp=-1"], "mesh: at most one of data/fsdp/tensor may be -1"),
    (["mesh.rules=[['heads', 'model']]"], "mesh.rules: 'heads' maps to 'model', not a mesh axis"),
  ],
)
def test_rules_between_keys(overrides, message):
  _rejects(_config(*overrides), message)


def test_a_value_of_the_wrong_type_in_a_config_file_is_rejected():
  config = config_lib.defaults()
  config.train.num_epochs = 2  # an int where a number is expected is fine
  config_schema.validate(config)
  for key, value, message in [
    ("progress", 1, "train.progress=1 must be true or false"),
    ("schedule", None, "train.schedule=None; choose linear"),
  ]:
    config = config_lib.defaults()
    with config.unlocked(), config.ignore_type():
      config.train[key] = value
    _rejects(config, message)


@pytest.mark.parametrize(
  "override,suggestion",
  [
    ("train.stpes=10", "unknown config key: train.stpes (did you mean train.steps?)"),
    ("trian.steps=10", "unknown config key: trian.steps (no section trian) (did you mean train.steps?)"),
    ("checkpoint.kep=1", "(did you mean checkpoint.keep?)"),
    ("demo.seed=2", "(did you mean demo.seeds?)"),
  ],
)
def test_a_near_miss_key_gets_did_you_mean(override, suggestion):
  with pytest.raises(UserError) as info:
    config_lib.apply_overrides(config_lib.load("demo"), [override])
  assert suggestion in str(info.value)


def test_a_far_miss_key_gets_no_suggestion():
  with pytest.raises(UserError) as info:
    config_lib.apply_overrides(config_lib.load("tiny"), ["zzzz=1"])
  assert str(info.value) == "unknown config key: zzzz"


@pytest.mark.parametrize("keep", ["0", "-1"])
def test_checkpoint_keep_below_one_fails_before_anything_is_written(tmp_path, capsys, keep):
  workdir = tmp_path / "run"
  code = cli.main(["pretrain", "--config=configs/tiny.py", f"--config.checkpoint.keep={keep}", f"--workdir={workdir}"])
  err = capsys.readouterr().err
  assert code == 2
  assert err == f"jaxpretrain: error: checkpoint.keep={keep} must be an integer >= 1\n"
  assert not workdir.exists() or not os.listdir(workdir)


@pytest.mark.parametrize("command", ["prepare", "finetune", "demo"])
def test_every_command_that_takes_a_config_validates_it_first(tmp_path, capsys, command):
  workdir = tmp_path / "run"
  config = "configs/demo.py" if command == "demo" else "configs/tiny.py"
  code = cli.main([command, f"--config={config}", "--config.train.schedule=cosine_decay", f"--workdir={workdir}"])
  assert code == 2
  assert capsys.readouterr().err == (
    "jaxpretrain: error: train.schedule='cosine_decay'; choose linear, cosine or constant\n"
  )
  assert not workdir.exists()


def test_bench_validates_its_config(capsys):
  code = cli.main(["bench", "--config=configs/tiny.py", "--config.eval.metric_mode=maximize", "--steps=1"])
  assert code == 2
  assert capsys.readouterr().err == "jaxpretrain: error: eval.metric_mode='maximize'; choose min or max\n"


@pytest.mark.parametrize(
  "override,message",
  [
    ("demo.budgets=[64, 32]", "demo.budgets=[64, 32]: expected increasing label counts >= 2"),
    ("demo.seeds=0", "demo.seeds=0 must be an integer >= 1"),
    ("demo.pooling=max", "demo.pooling='max'; choose cls or mean"),
    ("demo.seq_len=512", "demo.seq_len=512 exceeds the model's 128 positions"),
    ("demo.batch_size=12", "demo.batch_size=12 is not divisible by the data-parallel size 8"),
    ("demo.learning_rate=-1", "demo.learning_rate=-1.0 must be a number > 0"),
  ],
)
def test_demo_keys_are_checked_before_any_work(tmp_path, override, message):
  with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")):
    demo.run(_config(override, name="demo"), str(tmp_path / "demo"))
  assert not (tmp_path / "demo").exists()


def test_the_demo_needs_the_demo_section():
  with pytest.raises(UserError, match="the demo needs the demo.\\* keys"):
    demo.validate(config_lib.load("tiny"))
