"""BERT-large (340M) MLM pretraining: configs/bert_base.py's recipe with the published large dims.

24 layers, 1024 wide, 16 heads, 4096 feed-forward (Devlin et al. 2019); the same data, batch
256 × 128, 1M steps, lr 1e-4 with 10k warmup and linear decay, weight decay 0.01. On accelerators
with less memory keep the global batch and raise `train.grad_accum_steps` or shard with `mesh.fsdp`.

  jaxpretrain pretrain --config=configs/bert_large.py --workdir=runs/bert-large
"""

import os

from jaxpretrain import config as config_lib
from jaxpretrain.models import presets


def get_config():
  # One recipe, two sizes: start from bert_base.py so the two cannot drift apart.
  c = config_lib.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "bert_base.py"))
  presets.apply(c.model, "large")
  return c
