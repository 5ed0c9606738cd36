"""Readers: specs (`embedded`, files and globs, `tfds:NAME`) -> documents, labeled records or translation pairs."""
