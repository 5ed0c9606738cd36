"""jaxpretrain: pretrain BERT- and GPT-style Transformers in JAX/Flax and fine-tune them."""

__version__ = "0.1.0"
