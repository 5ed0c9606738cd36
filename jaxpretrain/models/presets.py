"""Named model sizes with the published BERT dimensions (and GPT-2 small), in HF config names.

BERT sizes follow Turc et al. 2019 ("Well-Read Students Learn Better", the official small BERTs)
for tiny/mini/small/medium, and Devlin et al. 2019 for base/large.
"""

from jaxpretrain.errors import UserError

PRESETS = {
  # name: (layers, hidden, heads, intermediate)
  "tiny": dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=2, intermediate_size=512),
  "mini": dict(num_hidden_layers=4, hidden_size=256, num_attention_heads=4, intermediate_size=1024),
  "small": dict(num_hidden_layers=4, hidden_size=512, num_attention_heads=8, intermediate_size=2048),
  "medium": dict(num_hidden_layers=8, hidden_size=512, num_attention_heads=8, intermediate_size=2048),
  "base": dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072),
  "large": dict(num_hidden_layers=24, hidden_size=1024, num_attention_heads=16, intermediate_size=4096),
  "gpt2-small": dict(
    num_hidden_layers=12,
    hidden_size=768,
    num_attention_heads=12,
    intermediate_size=3072,
    vocab_size=50257,
    max_position_embeddings=1024,
    pre_layer_norm=True,
    causal=True,
    use_pooler=False,
    layer_norm_eps=1e-5,
    hidden_act="gelu_new",
    type_vocab_size=0,
  ),
}
BERT_VOCAB = 30522


def apply(model_config, name: str) -> None:
  """Sets the dimensions of preset `name` on a `config.model` section, in place.

  Args:
    model_config: the `model` ConfigDict.
    name: one of `PRESETS`.
  """
  if name not in PRESETS:
    raise UserError(f"unknown model preset {name!r}; choose one of {', '.join(PRESETS)}")
  for key, value in PRESETS[name].items():
    model_config[key] = value
  model_config.preset = name
