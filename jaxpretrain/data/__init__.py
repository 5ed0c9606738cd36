"""The data pipelines: readers of every source, the tokenizer, pretraining shards and fine-tuning examples.

Layout (import the module you need; nothing is imported here, so `import jaxpretrain.data` stays
cheap and TensorFlow Datasets is only imported when a `tfds:` spec is read):
  common      `RunData` (what every pipeline returns), the held-out split, boundary ids, read-ahead
  tokenizer   `Tokenizer`: train WordPiece or load any HF tokenizer directory
  readers/    where examples come from: `text` (files, globs, .jsonl rows), `tfds` (the one tfds
              reader), `labeled` (labeled records, `LabeledKind`), `pairs` (translation pairs),
              `embedded` / `embedded_translation` (the synthetic corpora, no download)
  pretrain/   `prepare` (tokenize + `packing` into ArrayRecord shards), `loader` (checkpointable
              grain batches), `pipeline` (`build_pretraining`, `ensure_prepared`)
  finetune/   `base` (read -> limit -> held-out split -> encode -> batches), `batches`, `features`,
              `kinds`, and its two fillings: `labeled` (`build_labeled`), `translation` (`build_translation`)

data/ imports only `errors`, `config` and itself: which task uses which pipeline is the task
table's (`tasks/registry.py`).
"""
