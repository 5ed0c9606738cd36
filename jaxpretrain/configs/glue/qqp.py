"""GLUE QQP: the BERT-paper fine-tuning recipe on hf:glue/qqp (see `configs/glue/__init__.py`)."""

from jaxpretrain.configs.glue import glue_config


def get_config():
  return glue_config("qqp")
