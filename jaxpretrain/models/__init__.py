"""The classic pipeline as flax.linen modules: embeddings → encoder → pooling → task heads."""
