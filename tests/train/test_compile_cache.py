"""`train.compilation_cache_dir`: a second run of the same config loads the compiled train step."""

import logging
import os

import jax
import pytest

from jaxpretrain.errors import UserError
from jaxpretrain.train import cache, loop
from tests.run_configs import tiny_pretrain_config

HIT = "Persistent compilation cache hit for 'jit_train_step'"


@pytest.fixture
def restore_jax_cache():
  """Puts JAX's cache settings back as they were (other tests in this process keep theirs)."""
  saved = {
    name: getattr(jax.config, name)
    for name in (
      "jax_compilation_cache_dir",
      "jax_enable_compilation_cache",
      "jax_persistent_cache_min_compile_time_secs",
    )
  }
  yield
  for name, value in saved.items():
    jax.config.update(name, value)
  from jax.experimental.compilation_cache import compilation_cache

  compilation_cache.reset_cache()


def test_where_the_cache_lives(monkeypatch, tmp_path):
  monkeypatch.delenv("JAXPRETRAIN_CACHE", raising=False)
  monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
  assert cache.compilation_cache_dir("auto") == str(tmp_path / "xdg" / "jaxpretrain" / "xla")
  monkeypatch.delenv("XDG_CACHE_HOME")
  assert cache.compilation_cache_dir("auto") == os.path.expanduser("~/.cache/jaxpretrain/xla")
  monkeypatch.setenv("JAXPRETRAIN_CACHE", str(tmp_path / "mine"))
  assert cache.compilation_cache_dir("auto") == str(tmp_path / "mine" / "xla")
  monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "jax"))  # the user's JAX setting wins over auto
  assert cache.compilation_cache_dir("auto") == str(tmp_path / "jax")
  assert cache.compilation_cache_dir("") == ""
  assert cache.compilation_cache_dir(str(tmp_path / "here")) == str(tmp_path / "here")


def test_empty_turns_the_cache_off(restore_jax_cache, tmp_path):
  assert cache.enable_compilation_cache(str(tmp_path / "on")) == str(tmp_path / "on")
  assert jax.config.jax_compilation_cache_dir == str(tmp_path / "on")
  assert cache.enable_compilation_cache("") == ""
  assert not jax.config.jax_compilation_cache_dir and not jax.config.jax_enable_compilation_cache


def test_a_named_cache_that_cannot_be_a_directory_is_a_one_line_error(restore_jax_cache, tmp_path):
  a_file = tmp_path / "a_file"
  a_file.write_text("keep me")
  with pytest.raises(UserError, match=rf"train.compilation_cache_dir={a_file}: {a_file} is not a directory"):
    cache.enable_compilation_cache(str(a_file))
  with pytest.raises(UserError, match=r"a_file/xla cannot be created \(Not a directory\)"):
    cache.enable_compilation_cache(str(a_file / "xla"))
  assert a_file.read_text() == "keep me"


def test_an_unusable_default_cache_is_a_warning_and_the_run_compiles_without_it(
  restore_jax_cache, tmp_path, monkeypatch, capsys
):
  (tmp_path / "a_file").write_text("")
  monkeypatch.setenv("JAXPRETRAIN_CACHE", str(tmp_path / "a_file"))  # auto = JAXPRETRAIN_CACHE/xla
  monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
  assert cache.enable_compilation_cache("auto") == ""
  assert not jax.config.jax_enable_compilation_cache
  err = capsys.readouterr().err
  assert err == (
    f"jaxpretrain: warning: the compilation cache {tmp_path}/a_file/xla cannot be created (Not a directory): "
    "compiling without it (train.compilation_cache_dir names another)\n"
  )


def test_second_run_loads_the_train_step_instead_of_compiling(restore_jax_cache, tmp_path, tiny_prepared, caplog):
  # Cache every program however fast it compiles (the tiny step may take under JAX's 1 s threshold).
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  caplog.set_level(logging.DEBUG, logger="jax._src.compiler")
  where = str(tmp_path / "xla")
  overrides = {"train.steps": 2, "train.compilation_cache_dir": where}
  jax.clear_caches()  # nothing compiled earlier in this process is reused from memory
  loop.run(tiny_pretrain_config(tiny_prepared, **overrides), str(tmp_path / "first"))
  assert HIT not in caplog.text
  entries = sorted(os.listdir(where))
  assert any(name.startswith("jit_train_step-") for name in entries)
  caplog.clear()
  jax.clear_caches()  # as a new process would start
  loop.run(tiny_pretrain_config(tiny_prepared, **overrides), str(tmp_path / "second"))
  assert HIT in caplog.text
  assert sorted(os.listdir(where)) == entries  # nothing new was compiled and stored
