"""Non-neural baselines to compare pretrained models against."""

from jaxpretrain.baselines.vsm import VSMBaseline, randomized_svd, word_vectors_from_doc_vectors

__all__ = ["VSMBaseline", "randomized_svd", "word_vectors_from_doc_vectors"]
