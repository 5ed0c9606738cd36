"""The one TensorFlow Datasets reader: `tfds:NAME[/CONFIG][:SPLIT]` specs, split choice, records.

Datasets are read with `tfds.data_source`, which needs no TensorFlow; they must be prepared in the
array_record format (what `data_source` downloads and prepares). Datasets whose code imports
TensorFlow (`glue`, `wikipedia`, ...) are not registered without it: TensorFlow is the optional
`jaxpretrain[tf]` extra, and the message for such a dataset says so and points to the `hf:` route
(`readers/hf_datasets.py`). `tensorflow_datasets` is imported only when a spec is read, so the
other readers stay cheap.

Split rule: the SPLIT a spec names; else `train` for training data, and for evaluation the first
of `EVAL_SPLITS` the dataset has (an unprepared dataset, whose splits are unknown, is asked for
each in turn).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator

from jaxpretrain.errors import UserError, first_line

EVAL_SPLITS = ("validation", "validation_matched", "test", "dev")
TEXT_FIELDS = ("text", "content", "document", "article", "sentence")
_BATCH = 1000


def parse_spec(spec: str) -> tuple[str, str]:
  """`tfds:NAME[/CONFIG][:SPLIT]` -> (NAME[/CONFIG], SPLIT); SPLIT defaults to `train`."""
  name, _, split = spec[len("tfds:") :].partition(":")
  if not name:
    raise UserError(f"bad tfds spec {spec!r}: expected tfds:NAME[/CONFIG][:SPLIT]")
  return name, split or "train"


def names_split(spec: str) -> bool:
  """Whether a `tfds:` spec names its split."""
  return ":" in spec[len("tfds:") :]


TF_EXTRA = 'pip install "jaxpretrain[tf]"'


def _unknown(name: str, spec: str) -> UserError:
  """The error for a dataset tfds does not know: without TensorFlow, most likely one whose code needs it."""
  import tensorflow_datasets as tfds

  if not _tensorflow_installed():
    if _ships_code_for(tfds, name):
      return _needs_tensorflow(name, spec)
    return UserError(
      f"unknown tfds dataset {name!r} in {spec} (datasets whose code needs TensorFlow are unavailable without it: "
      f"{TF_EXTRA}, or try hf:{name})"
    )
  return UserError(f"unknown tfds dataset {name!r} in {spec}")


def _needs_tensorflow(name: str, spec: str) -> UserError:
  return UserError(
    f"{spec} needs TensorFlow, which is not installed: {TF_EXTRA}, or read the Hugging Face copy with "
    f"hf:{name} (docs/data.md)"
  )


def _tensorflow_installed() -> bool:
  return importlib.util.find_spec("tensorflow") is not None


def _ships_code_for(tfds, name: str) -> bool:
  """Whether the tfds package has a module or package named after the dataset (`text/glue.py`)."""
  root, base = os.path.dirname(tfds.__file__), name.split("/")[0]
  categories = [d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))]
  return any(
    os.path.isfile(os.path.join(root, d, f"{base}.py")) or os.path.isdir(os.path.join(root, d, base))
    for d in categories
  )


def _missing_tensorflow(error: Exception) -> bool:
  """Whether an error is TensorFlow failing to import (a builder that needs it, without it)."""
  return isinstance(error, ModuleNotFoundError) and (error.name or "").split(".")[0] == "tensorflow"


def builder(spec: str):
  """The tfds builder of a `tfds:NAME/CONFIG[:split]` spec; a missing or broken dataset is a UserError.

  Args:
    spec: the data spec, for the message.

  Returns:
    The `tfds.core.DatasetBuilder`.
  """
  import tensorflow_datasets as tfds

  name, _ = parse_spec(spec)
  try:
    return tfds.builder(name)
  except tfds.core.registered.DatasetNotFoundError:
    raise _unknown(name, spec) from None
  except Exception as e:
    if _missing_tensorflow(e):
      raise _needs_tensorflow(name, spec) from None
    raise UserError(f"cannot open {spec}: {first_line(e)}") from None


def open_split(spec: str, split: str = "train"):
  """Opens the split of a spec that the module doc's rule picks.

  Args:
    spec: `tfds:NAME[/CONFIG][:SPLIT]`.
    split: "train" or "eval": which split a spec without SPLIT means.

  Returns:
    (the `tfds.data_source`, its number of records, the split read).
  """
  import tensorflow_datasets as tfds

  name, given = parse_spec(spec)
  candidates = [given]
  if split != "train" and not names_split(spec):
    known = list(builder(spec).info.splits.keys())
    candidates = [s for s in EVAL_SPLITS if s in known] if known else list(EVAL_SPLITS)
    if not candidates:
      raise UserError(f"{spec} has no validation or test split (it has {', '.join(known)}); set data.eval")
  for i, candidate in enumerate(candidates):
    try:
      source = tfds.data_source(name, split=candidate)
      return source, len(source), candidate
    except tfds.core.registered.DatasetNotFoundError:
      raise _unknown(name, spec) from None
    except Exception as e:
      if _missing_tensorflow(e):
        raise _needs_tensorflow(name, spec) from None
      if i == len(candidates) - 1:
        where = spec if candidate == given else f"{spec} split {candidate!r}"
        raise UserError(f"cannot read {where}: {first_line(e)}") from None
  raise AssertionError("unreachable")


def records(source, count: int) -> Iterator[dict]:
  """The first `count` records of a data source, read in batches where the source can."""
  batched = True
  for start in range(0, count, _BATCH):
    keys = list(range(start, min(start + _BATCH, count)))
    batch = None
    if batched:
      try:
        batch = source.__getitems__(keys)
      except TypeError:  # some sources (tfds' mock_data) lack batched reads
        batched = False
    if batch is None:
      batch = [source[k] for k in keys]
    yield from batch


def text_field(source, spec: str, column: str = "") -> str:
  """The feature holding a dataset's text: `column` (`data.text_column`), else the first of `TEXT_FIELDS`
  it has, else its only Text feature."""
  import tensorflow_datasets as tfds

  features = source.dataset_info.features
  if column:
    if column not in features:
      raise UserError(f"{spec} has no feature {column!r} (data.text_column); it has: {', '.join(features.keys())}")
    return column
  for field in TEXT_FIELDS:
    if field in features:
      return field
  text_fields = [k for k, v in features.items() if isinstance(v, tfds.features.Text)]
  if len(text_fields) == 1:
    return text_fields[0]
  raise UserError(
    f"{spec}: cannot tell which feature is the text; it has "
    f"{', '.join(features.keys())} (expected one of {', '.join(TEXT_FIELDS)})"
  )


def class_label_names(source, fields) -> list[str] | None:
  """The names of the first ClassLabel among `fields` (a Sequence of ClassLabel counts), or None."""
  import tensorflow_datasets as tfds

  features = source.dataset_info.features
  for field in fields:
    feature = features[field] if field in features else None
    feature = getattr(feature, "feature", feature)  # a Sequence(ClassLabel) of tags
    if isinstance(feature, tfds.features.ClassLabel):
      return list(feature.names)
  return None
