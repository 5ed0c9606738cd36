"""Readers: specs (`embedded`, files and globs, `tfds:NAME`, `hf:NAME`) -> documents, labeled records or pairs."""
