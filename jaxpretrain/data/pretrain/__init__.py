"""Pretraining data: corpus -> tokenizer -> packed ArrayRecord shards (`prepare`) -> grain batches (`loader`)."""
