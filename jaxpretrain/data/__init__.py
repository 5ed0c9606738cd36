"""The data pipeline: corpora, tokenizer, packed ArrayRecord shards, and grain loaders.

Modules (import the one you need; nothing is imported here, so `import jaxpretrain.data` stays
cheap and TensorFlow Datasets is only imported when a `tfds:` spec is read):
  embedded   the synthetic English-like corpus and labeled sentiment reviews (no download)
  sources    `iter_documents(spec)`: embedded, text/jsonl files and globs, tfds datasets
  tokenizer  `Tokenizer`: train WordPiece or load any HF tokenizer directory
  prepare    `prepare(spec, out_dir, ...)`: tokenize + pack into shards, with metadata
  loader     `make_dataset(prepared_dir, split, ...)`: checkpointable batches of packed rows
"""
