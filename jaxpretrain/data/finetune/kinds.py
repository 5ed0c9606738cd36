"""The labeled kinds: each record shape of `readers/labeled.py` bound to its encoding (`features.py`).

The task table (`tasks/registry.py`) names a fine-tuning task's kind: CLASSIFICATION, REGRESSION,
TOKEN_CLASSIFICATION or QA.
"""

from __future__ import annotations

import numpy as np

from jaxpretrain.data.finetune import features
from jaxpretrain.data.readers.labeled import (
  LabeledKind,
  classification_record,
  qa_record,
  regression_record,
  token_classification_record,
)


def _encode_classification(records, tokenizer, names, *, seq_len: int, doc_stride: int) -> dict:
  del doc_stride
  arrays = features.encode_classification(records, tokenizer, seq_len, names)
  arrays["weight"] = np.ones(len(arrays["label"]), np.float32)
  return arrays


def _encode_regression(records, tokenizer, names, *, seq_len: int, doc_stride: int) -> dict:
  del names, doc_stride  # scores have no label vocabulary
  arrays = features.encode_regression(records, tokenizer, seq_len)
  arrays["weight"] = np.ones(len(arrays["label"]), np.float32)
  return arrays


def _encode_token_classification(records, tokenizer, names, *, seq_len: int, doc_stride: int) -> dict:
  del doc_stride
  return features.encode_token_classification(records, tokenizer, seq_len, names)


def _encode_qa(records, tokenizer, names, *, seq_len: int, doc_stride: int) -> dict:
  """The features' arrays (`features.encode_qa`), one weight per feature."""
  del names
  arrays, _, _ = features.encode_qa(records, tokenizer, seq_len, doc_stride)
  arrays["weight"] = np.ones(len(arrays["input_ids"]), np.float32)
  return arrays


CLASSIFICATION = LabeledKind(
  classification_record,
  _encode_classification,
  raw_labels=lambda records: [r["label"] for r in records],
  embedded=True,
  drop_unlabeled=True,
)
# GLUE's unlabeled test splits score -1 (STS-B too): dropped as classification's -1 labels are.
REGRESSION = LabeledKind(regression_record, _encode_regression, drop_unlabeled=True)
TOKEN_CLASSIFICATION = LabeledKind(
  token_classification_record,
  _encode_token_classification,
  raw_labels=lambda records: [t for r in records for t in r["tags"]],
  label_unit="scored words",
)
QA = LabeledKind(qa_record, _encode_qa)
