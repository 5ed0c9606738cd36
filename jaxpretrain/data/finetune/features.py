"""Labeled records → fixed-length int32 arrays for the fine-tuning tasks, and the label vocabulary.

* Classification: `[CLS] a [SEP] (b [SEP])` with token types 0/1 (`Tokenizer.encode_examples`);
  regression the same, with float scores for labels.
* Token classification: words are split into word pieces; the first piece of each word carries the
  word's tag, every other position -100 (BERT's recipe, as in HF `run_ner`).
* QA: `[CLS] question [SEP] context [SEP]`, long contexts split into overlapping windows of
  `doc_stride` tokens; each window (feature) keeps its example index and the character offsets of
  its context tokens for post-processing. A window without the answer targets [CLS] (position 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jaxpretrain.errors import UserError, first_line

IGNORE = -100  # the label of positions no loss scores (later word pieces, special tokens, padding)


def label_names(
  labels: Sequence,
  *,
  num_labels: int = 0,
  declared: Sequence[str] | None = None,
  where: Sequence[str] | None = None,
) -> list[str]:
  """The label vocabulary: declared names, else `str(i)` for integer labels, else sorted strings.

  Integer labels are ids: with `num_labels` N each must be in 0..N-1; inferred (N = 0), the
  distinct labels must be exactly 0..K-1 (a stray `7` among 0/1 is a mistake, not an 8-class task).

  Args:
    labels: raw labels of the training data (ints or strings), tags flattened.
    num_labels: `task.num_labels` (0 = infer).
    declared: names the source declares (a tfds ClassLabel), if any.
    where: for each label, the example it comes from ("FILE:LINE"), for messages.

  Returns:
    The names; label id i is names[i].

  Raises:
    UserError: one line naming the stray labels and where they are.
  """
  if declared:
    names = [str(n) for n in declared]
  elif all(isinstance(x, int) for x in labels):
    check_integer_labels(labels, num_labels=num_labels, where=where)
    names = [str(i) for i in range(num_labels or len(set(labels)))]
  elif all(isinstance(x, str) for x in labels):
    distinct = sorted(set(labels), key=lambda s: (s != "O", s))  # "O" first: tag 0 means outside
    if num_labels and len(distinct) > num_labels:
      raise UserError(
        f"the training data has {len(distinct)} distinct labels ({', '.join(distinct[:8])}"
        f"{', ...' if len(distinct) > 8 else ''}) but task.num_labels={num_labels}"
      )
    names = distinct + [f"unused_{i}" for i in range(len(distinct), num_labels)]
  else:
    raise UserError("labels mix integers and strings; use one kind")
  if num_labels and len(names) != num_labels:
    raise UserError(f"the data declares {len(names)} labels but task.num_labels={num_labels}")
  if len(names) < 2 and not declared:
    raise UserError(f"the training data has {len(names)} label(s); classification needs at least 2")
  return names


def check_integer_labels(labels: Sequence[int], *, num_labels: int = 0, where: Sequence[str] | None = None) -> None:
  """Integer labels are ids 0..N-1 (`num_labels` N), or, inferred, exactly the ids 0..K-1 of K distinct labels.

  Args:
    labels: the training data's integer labels, tags flattened.
    num_labels: `task.num_labels` (0 = infer).
    where: for each label, the example it comes from, for messages.

  Raises:
    UserError: one line naming the stray values and where the first of each is.
  """
  distinct = sorted(set(labels))
  count = num_labels or len(distinct)
  stray = [v for v in distinct if not 0 <= v < count]
  if not stray:
    return
  first = {}
  for i, v in enumerate(labels):
    first.setdefault(v, where[i] if where else f"label #{i}")
  shown = ", ".join(f"{v} ({first[v]})" for v in stray[:3]) + (", ..." if len(stray) > 3 else "")
  if num_labels:
    if len(stray) == 1:
      v = stray[0]
      raise UserError(f"{first[v]}: label {v} is outside task.num_labels={num_labels} (ids 0..{num_labels - 1})")
    raise UserError(f"labels outside task.num_labels={num_labels} (ids 0..{num_labels - 1}): {shown}")
  missing = [i for i in range(count) if i not in set(distinct)]
  absent = f" ({', '.join(map(str, missing[:5]))} never occurs)" if missing else ""
  raise UserError(
    f"integer labels must be the ids 0..{count - 1} of the training data's {count} distinct labels, but "
    f"{'label' if len(stray) == 1 else 'labels'} {shown} {'is' if len(stray) == 1 else 'are'} outside"
    f"{absent}; fix the data, or set task.num_labels"
  )


def label_id(label, names: Sequence[str], where: str) -> int:
  """The id of one raw label; a `UserError` naming the example when it is not in `names`."""
  if isinstance(label, int):
    if not 0 <= label < len(names):
      raise UserError(f"{where}: label {label} is outside task.num_labels={len(names)} (ids 0..{len(names) - 1})")
    return label
  try:
    return list(names).index(label)
  except ValueError:
    raise UserError(
      f"{where}: label {label!r} is not one of the {len(names)} training labels "
      f"({', '.join(names[:8])}{', ...' if len(names) > 8 else ''})"
    ) from None


def label_counts(arrays: dict | None, names: Sequence[str]) -> dict[str, int] | None:
  """How often each label occurs in encoded arrays: classification rows (`label`), or the scored
  word pieces of token classification (`labels` other than -100).

  Args:
    arrays: what `encode_classification` / `encode_token_classification` returned (None: no data).
    names: the label vocabulary.

  Returns:
    {label name: count} in vocabulary order, or None when the arrays carry no labels (QA).
  """
  if arrays is None:
    return {str(n): 0 for n in names} if names else None
  labels = arrays.get("label", arrays.get("labels"))
  if labels is None or not names:
    return None
  labels = np.asarray(labels).reshape(-1)
  counts = np.bincount(labels[labels != IGNORE], minlength=len(names))
  return {str(n): int(c) for n, c in zip(names, counts)}


def encode_texts(records: list[dict], tokenizer, seq_len: int) -> dict:
  """`input_ids`, `token_type_ids`, `attention_mask` [n, seq_len] of classification-shaped records (texts or pairs)."""
  pairs = [r["text_b"] is not None for r in records]
  if any(pairs) and not all(pairs):
    where = records[pairs.index(False)]["where"]
    raise UserError(f"{where}: a single text among text pairs (every example needs text_a and text_b)")
  return tokenizer.encode_examples(
    [r["text_a"] for r in records], [r["text_b"] for r in records] if all(pairs) else None, max_length=seq_len
  )


def encode_classification(records: list[dict], tokenizer, seq_len: int, names: Sequence[str]) -> dict:
  """`input_ids`, `token_type_ids`, `attention_mask` [n, seq_len] and `label` [n]."""
  arrays = encode_texts(records, tokenizer, seq_len)
  arrays["label"] = np.array([label_id(r["label"], names, r["where"]) for r in records], np.int32)
  return arrays


def encode_regression(records: list[dict], tokenizer, seq_len: int) -> dict:
  """`input_ids`, `token_type_ids`, `attention_mask` [n, seq_len] and float32 scores `label` [n]."""
  arrays = encode_texts(records, tokenizer, seq_len)
  arrays["label"] = np.array([r["label"] for r in records], np.float32)
  return arrays


def align_word_labels(word_ids: Sequence[int | None], word_labels: Sequence[int]) -> list[int]:
  """Per-piece labels: a word's label on its first piece, -100 on later pieces and special tokens.

  Args:
    word_ids: for each token, the index of its word (None for special tokens and padding).
    word_labels: one label id per word.

  Returns:
    One label per token.
  """
  out, previous = [], None
  for word in word_ids:
    out.append(IGNORE if word is None or word == previous else word_labels[word])
    previous = word
  return out


def encode_token_classification(records: list[dict], tokenizer, seq_len: int, names: Sequence[str]) -> dict:
  """`input_ids`, `token_type_ids`, `attention_mask` and aligned `labels` [n, seq_len]."""
  try:
    encoded = tokenizer.hf(
      [r["tokens"] for r in records],
      is_split_into_words=True,
      truncation=True,
      max_length=seq_len,
      padding="max_length",
      return_token_type_ids=True,
    )
  except Exception as e:
    raise UserError(f"the tokenizer cannot encode pre-split words: {first_line(e)}") from None
  labels = np.full((len(records), seq_len), IGNORE, np.int32)
  for i, r in enumerate(records):
    ids = [label_id(t, names, r["where"]) for t in r["tags"]]
    labels[i] = align_word_labels(encoded.word_ids(i), ids)
  return {
    "input_ids": np.array(encoded["input_ids"], np.int32),
    "token_type_ids": np.array(encoded["token_type_ids"], np.int32),
    "attention_mask": np.array(encoded["attention_mask"], np.int32),
    "labels": labels,
  }


def encode_qa(records: list[dict], tokenizer, seq_len: int, doc_stride: int) -> tuple[dict, list[int], list]:
  """SQuAD features of `records`.

  Args:
    records: QA records (see `labeled_sources`).
    tokenizer: the run's `Tokenizer`.
    seq_len: tokens per feature.
    doc_stride: tokens shared by consecutive windows of a long context.

  Returns:
    (arrays with `input_ids`, `token_type_ids`, `attention_mask`, `start_positions`,
    `end_positions` [num_features, ...]; the example index of each feature; each feature's per-token
    context character offsets, None outside the context).
  """
  try:
    encoded = tokenizer.hf(
      [r["question"].lstrip() for r in records],
      [r["context"] for r in records],
      truncation="only_second",
      max_length=seq_len,
      stride=doc_stride,
      return_overflowing_tokens=True,
      return_offsets_mapping=True,
      padding="max_length",
      return_token_type_ids=True,
    )
  except Exception as e:
    raise UserError(
      f"cannot encode QA examples with data.seq_len={seq_len}, data.doc_stride={doc_stride}: {first_line(e)}"
    ) from None
  examples = list(encoded["overflow_to_sample_mapping"])
  starts, ends, offsets = [], [], []
  for f, example in enumerate(examples):
    sequence_ids = encoded.sequence_ids(f)
    context_offsets = [tuple(o) if s == 1 else None for o, s in zip(encoded["offset_mapping"][f], sequence_ids)]
    offsets.append(context_offsets)
    start, end = answer_tokens(records[example], context_offsets)
    starts.append(start)
    ends.append(end)
  arrays = {
    "input_ids": np.array(encoded["input_ids"], np.int32),
    "token_type_ids": np.array(encoded["token_type_ids"], np.int32),
    "attention_mask": np.array(encoded["attention_mask"], np.int32),
    "start_positions": np.array(starts, np.int32),
    "end_positions": np.array(ends, np.int32),
  }
  return arrays, examples, offsets


def answer_tokens(record: dict, offsets: Sequence) -> tuple[int, int]:
  """(start, end) token of the first answer inside this window, or (0, 0) when it is not inside."""
  if not record["answers"] or not record["answer_starts"]:
    return 0, 0
  char_start = record["answer_starts"][0]
  char_end = char_start + len(record["answers"][0])
  inside = [i for i, o in enumerate(offsets) if o is not None]
  if char_start < 0 or not inside or offsets[inside[0]][0] > char_start or offsets[inside[-1]][1] < char_end:
    return 0, 0
  start = next(i for i in inside if offsets[i][1] > char_start)
  end = next(i for i in reversed(inside) if offsets[i][0] < char_end)
  return start, max(start, end)
