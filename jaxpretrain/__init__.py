"""jaxpretrain: pretrain BERT- and GPT-style Transformers in JAX/Flax and fine-tune them."""

import logging

__version__ = "0.1.0"


def _drop_torch_advice(record: logging.LogRecord) -> bool:
  # transformers says "PyTorch was not found. Models won't be available ..." on import when torch is
  # missing; jaxpretrain uses only its tokenizers and configs, so that advice is noise here.
  return not record.getMessage().startswith("PyTorch was not found")


logging.getLogger("transformers").addFilter(_drop_torch_advice)
