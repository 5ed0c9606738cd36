"""Hugging Face datasets made offline for the `hf:` tests: saved DatasetDicts, data directories, corpora."""

import contextlib
import os

import pytest

GLUE_LABELS = ["negative", "positive"]


@pytest.fixture(autouse=True)
def hf_offline(monkeypatch, tmp_path_factory):
  """No test reaches the Hub or the user's HF cache: `datasets` answers a Hub name at once from an empty cache."""
  datasets = pytest.importorskip("datasets")
  monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
  monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
  monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path_factory.mktemp("hf-cache")))


def sentences(n: int, offset: int = 0) -> list[str]:
  """`n` short distinct review-like sentences."""
  words = ["good", "bad", "fine", "dull", "great", "awful", "warm", "cold"]
  return [f"the film was {words[i % 8]} and {words[(i * 3 + 1) % 8]} number {i + offset}" for i in range(n)]


def glue_dict(columns: dict[str, list], splits: dict[str, int], *, label_names=GLUE_LABELS, unlabeled=("test",)):
  """A GLUE-schema DatasetDict: each split the first `splits[name]` rows of `columns`, a ClassLabel
  `label` (alternating 0/1; -1 in `unlabeled` splits) and an `idx`."""
  import datasets

  features = {name: datasets.Value("string") for name in columns}
  features.update(label=datasets.ClassLabel(names=list(label_names)), idx=datasets.Value("int32"))
  parts = {}
  for split, n in splits.items():
    rows = {name: values[:n] for name, values in columns.items()}
    rows["label"] = [-1 if split in unlabeled else i % 2 for i in range(n)]
    rows["idx"] = list(range(n))
    parts[split] = datasets.Dataset.from_dict(rows, features=datasets.Features(features))
  return datasets.DatasetDict(parts)


@contextlib.contextmanager
def _quiet():
  import datasets

  datasets.disable_progress_bars()
  try:
    yield
  finally:
    datasets.enable_progress_bars()


def save(dataset, path) -> str:
  """`dataset.save_to_disk(path)` without progress bars; returns the path."""
  with _quiet():
    dataset.save_to_disk(str(path))
  return str(path)


def parquet_dir(dataset_dict, path) -> str:
  """A data directory `load_dataset` reads: one SPLIT.parquet per split."""
  os.makedirs(path, exist_ok=True)
  with _quiet():
    for split, part in dataset_dict.items():
      part.to_parquet(os.path.join(path, f"{split}.parquet"))
  return str(path)


def corpus(texts: list[str], path, column: str = "text", **other_columns) -> str:
  """A saved single Dataset with the texts in `column` (and any other columns given)."""
  import datasets

  return save(datasets.Dataset.from_dict({column: texts, **other_columns}), path)
