"""The one Hugging Face `datasets` reader: `hf:` specs, split choice, columns and rows.

Specs:
  * `hf:NAME[/CONFIG][:SPLIT]`: a dataset of the Hugging Face Hub (or of the HF cache). Two parts
    are dataset and config (`hf:glue/sst2`), or, when there is no such dataset, an `owner/name`
    dataset (`hf:HuggingFaceFW/fineweb`); three parts are `owner/name/config`.
  * `hf:DIR[:SPLIT]`: a local directory: what `save_to_disk` wrote (a Dataset or a DatasetDict,
    read with `datasets.load_from_disk`), else data files `datasets.load_dataset` reads (parquet,
    json/jsonl, csv, txt; the splits come from the file names, e.g. train.parquet and
    validation.parquet). DIR is an existing directory or a path that starts with `/`, `./`, `../`
    or `~`.

Split rule (as `tfds.py`'s): the SPLIT a spec names; else `train` for training data, and for
evaluation the first of `EVAL_SPLITS` the dataset has. A saved single Dataset is one split, `train`.
Splits are not sliced (`train[:10%]`); `data.train_examples` / `data.eval_examples` cap instead.

No corpus is ever held in memory: data directories, and Hub datasets where the caller streams,
are read with `streaming=True`; saved datasets and Hub datasets read into the HF cache are
memory-mapped Arrow files read in batches. `HF_DATASETS_OFFLINE` / `HF_HUB_OFFLINE` and the HF cache
are `datasets`' own (offline, a Hub dataset comes from the cache, so it is never streamed).
`datasets` is imported only when a spec is read.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator

from jaxpretrain import files
from jaxpretrain.data.readers.tfds import EVAL_SPLITS, TEXT_FIELDS
from jaxpretrain.errors import UserError, first_line

PREFIX = "hf:"
_BATCH = 1000
_PATH_STARTS = ("/", "./", "../", "~")


@dataclasses.dataclass(frozen=True)
class Source:
  """A parsed `hf:` spec.

  Attributes:
    spec: the spec as given, for messages.
    path: the local directory, or the Hub dataset's name.
    config: the Hub dataset's config (None: its default).
    split: the split the spec names (None: the split rule picks).
    local: whether `path` is a local directory.
  """

  spec: str
  path: str
  config: str | None
  split: str | None
  local: bool


def parse_spec(spec: str) -> Source:
  """`hf:NAME[/CONFIG][:SPLIT]` or `hf:DIR[:SPLIT]` -> its `Source` (see the module doc)."""
  value = spec[len(PREFIX) :]
  if not value.strip(":/"):
    raise UserError(f"bad hf spec {spec!r}: expected hf:NAME[/CONFIG][:SPLIT] or hf:DIR[:SPLIT]")
  local = _local(spec, value)
  if local is not None:
    return local
  name, _, split = value.partition(":")
  parts = name.split("/")
  if len(parts) > 3 or not all(parts):
    raise UserError(f"bad hf spec {spec!r}: expected hf:NAME[/CONFIG][:SPLIT] (NAME may be owner/name)")
  config = parts.pop() if len(parts) > 1 else None
  return Source(spec, "/".join(parts), config, split or None, local=False)


def _local(spec: str, value: str) -> Source | None:
  """The `Source` of a local directory spec, or None where `value` names a Hub dataset."""
  if os.path.isdir(os.path.expanduser(value)):
    return Source(spec, os.path.expanduser(value), None, None, local=True)
  head, colon, split = value.rpartition(":")
  if (
    colon and split and "/" not in split and (head.startswith(_PATH_STARTS) or os.path.isdir(os.path.expanduser(head)))
  ):
    return Source(spec, os.path.expanduser(head), None, split, local=True)
  if value.startswith(_PATH_STARTS):
    return Source(spec, os.path.expanduser(value), None, None, local=True)
  return None


def without_split(spec: str) -> str:
  """The spec with the split it names removed: what the split rule reads evaluation data from."""
  source = parse_spec(spec)
  if source.split is None:
    return spec
  return spec[: -len(source.split) - 1]


def open_split(spec: str, split: str = "train", *, stream: bool = False):
  """Opens the split of a spec that the module doc's rule picks.

  Args:
    spec: `hf:NAME[/CONFIG][:SPLIT]` or `hf:DIR[:SPLIT]`.
    split: "train" or "eval": which split a spec without SPLIT means.
    stream: stream a Hub dataset rather than read it into the HF cache (a pretraining corpus);
      data directories always stream, saved datasets never need to.

  Returns:
    (the `datasets.Dataset` or `IterableDataset`, without any output format, the split read).
  """
  source = parse_spec(spec)
  known, get = _open(source, stream)
  if source.split is not None or split == "train":
    candidates = [source.split or "train"]
    if known and candidates[0] not in known:
      raise UserError(f"{spec} has no split {candidates[0]!r} (it has: {', '.join(known)})")
  else:
    candidates = [s for s in EVAL_SPLITS if s in known] if known else list(EVAL_SPLITS)
    if not candidates:
      raise UserError(f"{spec} has no validation or test split (it has: {', '.join(known)}); set data.eval")
  for i, candidate in enumerate(candidates):
    try:
      return get(candidate).with_format(None), candidate
    except UserError:
      raise
    except Exception as e:
      if i == len(candidates) - 1:
        raise UserError(f"cannot read {spec} split {candidate!r}: {first_line(e)}") from None
  raise AssertionError("unreachable")


def _open(source: Source, stream: bool) -> tuple[list[str], Callable]:
  """(the split names, split -> dataset) of a source; a source that cannot be had is a UserError."""
  import datasets

  if source.local:
    if not os.path.isdir(source.path):
      raise UserError(f"hf dataset directory not found: {source.path}")
    if os.path.isfile(os.path.join(source.path, "dataset_dict.json")):
      splits = files.read_json(os.path.join(source.path, "dataset_dict.json"), "hf dataset file").get("splits", [])
      return [str(s) for s in splits], lambda split: _load_saved(os.path.join(source.path, split))
    if _saved(source.path):
      return ["train"], lambda _: _load_saved(source.path)
    builder = _call(source, datasets.load_dataset_builder, source.path)
    return _splits(builder), lambda split: builder.as_streaming_dataset(split=split)
  builder = _hub_builder(source)
  if stream and not _offline():
    return _splits(builder), lambda split: builder.as_streaming_dataset(split=split)

  def prepared(split: str):
    builder.download_and_prepare()
    return builder.as_dataset(split=split)

  return _splits(builder), prepared


def _saved(path: str) -> bool:
  return all(os.path.isfile(os.path.join(path, name)) for name in ("state.json", "dataset_info.json"))


def _load_saved(path: str):
  """One saved split; one saved without rows (no data file, which `load_from_disk` fails on) reads as empty."""
  import datasets

  if files.read_json(os.path.join(path, "state.json"), "hf dataset file").get("_data_files"):
    return datasets.load_from_disk(path)
  features = datasets.DatasetInfo.from_directory(path).features or datasets.Features()
  return datasets.Dataset.from_dict({name: [] for name in features}, features=features)


def _splits(builder) -> list[str]:
  """The split names a `datasets` builder knows of ([] where it cannot tell before reading)."""
  return [str(s) for s in (builder.config.data_files or builder.info.splits or {})]


def _offline() -> bool:
  import datasets

  return bool(datasets.config.HF_HUB_OFFLINE or getattr(datasets.config, "HF_DATASETS_OFFLINE", False))


def _hub_builder(source: Source):
  """The builder of a Hub dataset; NAME/CONFIG falls back to the dataset `NAME/CONFIG` (module doc)."""
  import datasets

  attempts = [(source.path, source.config)]
  if source.config is not None and "/" not in source.path:
    attempts.append((f"{source.path}/{source.config}", None))
  errors = []
  for name, config in attempts:
    try:
      return datasets.load_dataset_builder(name, config)
    except Exception as e:
      errors.append(e)
      if not isinstance(e, (ConnectionError, datasets.exceptions.DatasetNotFoundError)):
        break
  not_found = isinstance(errors[0], datasets.exceptions.DatasetNotFoundError)
  raise UserError(_message(source, errors[-1] if not_found else errors[0]))


def _call(source: Source, fn: Callable, *args, **kwargs):
  try:
    return fn(*args, **kwargs)
  except UserError:
    raise
  except Exception as e:
    raise UserError(_message(source, e)) from None


def _message(source: Source, error: Exception) -> str:
  text = f"cannot load {source.spec}: {first_line(error)}"
  if isinstance(error, ConnectionError):
    if _offline():
      return text + " (offline mode is on and the HF cache does not have it)"
    return text + " (no network? a dataset already in the HF cache loads with HF_DATASETS_OFFLINE=1)"
  return text


def column_names(dataset) -> list[str]:
  """A split's columns; for streamed files that declare none (csv), the first row's fields."""
  if dataset.column_names is not None:
    return list(dataset.column_names)
  return list(next(iter(dataset.take(1)), {}))


def check_columns(dataset, where: str, columns: dict[str, str]) -> None:
  """Every named column is in the split.

  Args:
    dataset: the opened split.
    where: e.g. "hf:glue/sst2 split 'train'", for the message.
    columns: {config key: column name} of the columns the config names.

  Raises:
    UserError: "<where> has no column 'x' (data.text_column); it has: a, b".
  """
  names = column_names(dataset)
  for key, column in columns.items():
    if column not in names:
      raise UserError(f"{where} has no column {column!r} ({key}); it has: {', '.join(names) or 'no columns'}")


def text_column(dataset, where: str, column: str = "") -> str:
  """The column holding a corpus's text: `column`, else the first of `TEXT_FIELDS`, else the only string column.

  Args:
    dataset: the opened split.
    where: the split, for messages.
    column: `data.text_column` ("" = guess).

  Returns:
    The column name.
  """
  import datasets

  if column:
    check_columns(dataset, where, {"data.text_column": column})
    return column
  names = column_names(dataset)
  if not names:
    raise UserError(f"no text in {where} (it has no rows)")
  for field in TEXT_FIELDS:
    if field in names:
      return field
  features = dataset.features or {}
  strings = [k for k, v in features.items() if isinstance(v, datasets.Value) and v.dtype in ("string", "large_string")]
  if len(strings) == 1:
    return strings[0]
  raise UserError(f"{where}: cannot tell which column is the text; it has: {', '.join(names)} (set data.text_column)")


def class_label_names(dataset, fields) -> list[str] | None:
  """The names of the first ClassLabel among `fields` (a list of ClassLabel, e.g. NER tags, counts), or None."""
  import datasets

  features = dataset.features or {}
  for field in fields:
    feature = features.get(field)
    feature = getattr(feature, "feature", feature)  # List(ClassLabel) of tags
    if isinstance(feature, datasets.ClassLabel):
      return list(feature.names)
  return None


def translation_languages(dataset) -> tuple[str, str] | None:
  """(source, target) language codes of a `translation` column of two languages, in the dataset's order."""
  import datasets

  feature = (dataset.features or {}).get("translation")
  if isinstance(feature, datasets.Translation) and len(feature.languages) == 2:
    return feature.languages[0], feature.languages[1]
  return None


def rows(dataset, where: str) -> Iterator[dict]:
  """The rows of an opened split, in order, read in batches; a failed read is one UserError line.

  Args:
    dataset: from `open_split` (select columns first to read less).
    where: the split, for the message.

  Returns:
    An iterator of {column: value}.
  """
  batches = dataset.iter(batch_size=_BATCH)
  while True:
    try:
      batch = next(batches)
    except StopIteration:
      return
    except Exception as e:
      raise UserError(f"cannot read {where}: {first_line(e)}") from None
    yield from (dict(zip(batch, values)) for values in zip(*batch.values()))
