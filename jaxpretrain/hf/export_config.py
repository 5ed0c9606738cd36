"""A run's `ModelConfig` → the `transformers` config (and generation config) an export writes."""

from __future__ import annotations

from jaxpretrain.data.common import boundary_ids
from jaxpretrain.errors import UserError
from jaxpretrain.hf.families import max_input_length

# transformers' text-generation pipeline makes 256 new tokens unless the generation config says otherwise.
PIPELINE_NEW_TOKENS = 256


def _gpt2_config(transformers, model, special_ids: dict, common: dict, head: dict):
  del head
  # Where the run's packing starts and ends a document (`[BOS] doc [EOS]`): what generation starts
  # from and stops at. A WordPiece tokenizer has no bos/eos tokens: its [CLS]/[SEP] stand in.
  common["bos_token_id"], common["eos_token_id"] = boundary_ids(special_ids)
  return transformers.GPT2Config(
    n_embd=model.hidden_size,
    n_layer=model.num_hidden_layers,
    n_head=model.num_attention_heads,
    n_inner=model.intermediate_size,
    n_positions=model.max_position_embeddings,
    activation_function=model.hidden_act,
    resid_pdrop=model.hidden_dropout_prob,
    embd_pdrop=model.hidden_dropout_prob,
    attn_pdrop=model.attention_probs_dropout_prob,
    layer_norm_epsilon=model.layer_norm_eps,
    **common,
  )


def _bert_config(transformers, model, special_ids: dict, common: dict, head: dict):
  del head
  roberta = model.position_offset > 0
  if roberta and special_ids.get("pad") != model.position_offset - 1:
    # HF RoBERTa numbers positions from `input_ids != pad_token_id`: the two must agree.
    raise UserError(
      f"model.position_offset={model.position_offset} needs the padding id "
      f"{model.position_offset - 1}, but the tokenizer pads with {special_ids.get('pad')}"
    )
  config_class = transformers.RobertaConfig if roberta else transformers.BertConfig
  return config_class(
    hidden_size=model.hidden_size,
    num_hidden_layers=model.num_hidden_layers,
    num_attention_heads=model.num_attention_heads,
    intermediate_size=model.intermediate_size,
    max_position_embeddings=model.max_position_embeddings,
    type_vocab_size=max(model.type_vocab_size, 1),
    hidden_act=model.hidden_act,
    hidden_dropout_prob=model.hidden_dropout_prob,
    attention_probs_dropout_prob=model.attention_probs_dropout_prob,
    layer_norm_eps=model.layer_norm_eps,
    **common,
  )


def _modernbert_config(transformers, model, special_ids: dict, common: dict, head: dict):
  common["bos_token_id"], common["eos_token_id"] = boundary_ids(special_ids)  # [CLS]/[SEP], as ModernBERT's own
  layers = model.num_hidden_layers
  kinds = ["full_attention" if model.is_global(i) else "sliding_attention" for i in range(layers)]
  return transformers.ModernBertConfig(
    hidden_size=model.hidden_size,
    intermediate_size=model.intermediate_size,
    num_hidden_layers=layers,
    num_attention_heads=model.num_attention_heads,
    hidden_activation=model.hidden_act,
    max_position_embeddings=model.max_position_embeddings,
    norm_eps=model.layer_norm_eps,
    norm_bias=False,
    attention_bias=False,
    mlp_bias=False,
    classifier_bias=False,
    decoder_bias=True,
    classifier_activation=model.hidden_act,  # the head transform runs the model's activation
    classifier_pooling=head.get("pooling", "cls"),
    classifier_dropout=head.get("classifier_dropout", 0.0),
    embedding_dropout=model.hidden_dropout_prob,
    mlp_dropout=model.hidden_dropout_prob,
    attention_dropout=model.attention_probs_dropout_prob,
    layer_types=kinds,
    # transformers 4 reads the pattern from this; 5 from layer_types.
    global_attn_every_n_layers=model.global_attn_every_n_layers if model.sliding_window else 1,
    local_attention=2 * model.sliding_window if model.sliding_window else 128,
    rope_parameters={
      "full_attention": {"rope_type": "default", "rope_theta": model.rope_theta},
      "sliding_attention": {"rope_type": "default", "rope_theta": model.local_rope_theta},
    },
    cls_token_id=special_ids.get("cls"),
    sep_token_id=special_ids.get("sep"),
    **common,
  )


def _llama_config(transformers, model, special_ids: dict, common: dict, head: dict):
  del head
  common["bos_token_id"], common["eos_token_id"] = boundary_ids(special_ids)  # as for GPT-2
  return transformers.LlamaConfig(
    hidden_size=model.hidden_size,
    intermediate_size=model.intermediate_size,
    num_hidden_layers=model.num_hidden_layers,
    num_attention_heads=model.num_attention_heads,
    num_key_value_heads=model.kv_heads,
    head_dim=model.head_dim,
    hidden_act=model.hidden_act,
    max_position_embeddings=model.max_position_embeddings,
    rms_norm_eps=model.layer_norm_eps,
    attention_bias=False,
    mlp_bias=False,
    attention_dropout=model.attention_probs_dropout_prob,
    rope_parameters={"rope_type": "default", "rope_theta": model.rope_theta},
    **common,
  )


# Family -> fn(transformers, model, special_ids, common config fields, head settings) -> the HF config.
_CONFIG_WRITERS = {
  "bert": _bert_config,
  "roberta": _bert_config,
  "gpt2": _gpt2_config,
  "modernbert": _modernbert_config,
  "llama": _llama_config,
}


def hf_config(
  model,
  family: str,
  arch: str,
  special_ids: dict,
  *,
  num_labels: int = 0,
  label_names: list | None = None,
  problem_type: str = "",
  pooling: str = "cls",
  classifier_dropout: float = 0.0,
):
  """The `transformers` config an export writes.

  Args:
    model: the run's `ModelConfig`.
    family: from `family_of`.
    arch: from `architecture_for`.
    special_ids: the tokenizer's special ids (`Tokenizer.special_ids`).
    num_labels: classifier outputs (classification / token classification), 0 otherwise.
    label_names: names of the labels, in id order, when the data had names.
    problem_type: the config's `problem_type` ("" = none, transformers' default).
    pooling: the run's `task.pooling` (ModernBERT's `classifier_pooling`).
    classifier_dropout: the run's `task.classifier_dropout` (ModernBERT's `classifier_dropout`).

  Returns:
    A `transformers.PretrainedConfig` (save it with `save_pretrained`).
  """
  import transformers

  labels = {}
  if num_labels:
    names = (
      list(label_names) if label_names and len(label_names) == num_labels else [f"LABEL_{i}" for i in range(num_labels)]
    )
    labels = dict(id2label=dict(enumerate(map(str, names))), label2id={str(n): i for i, n in enumerate(names)})
  common = dict(
    architectures=[arch],
    vocab_size=model.vocab_size,
    initializer_range=model.initializer_range,
    bos_token_id=special_ids.get("bos"),
    eos_token_id=special_ids.get("eos"),
    pad_token_id=special_ids.get("pad"),
    tie_word_embeddings=model.tie_word_embeddings,
    **labels,
  )
  if problem_type:
    common["problem_type"] = problem_type
  head = dict(pooling=pooling, classifier_dropout=classifier_dropout)
  return _CONFIG_WRITERS[family](transformers, model, special_ids, common, head)


def generation_config(model, special_ids: dict):
  """The generation_config.json of a causal-LM export.

  Generation starts and stops at the document boundaries of the run's packing, and makes at most
  a quarter of the positions (and at most the pipeline's 256) new tokens: the text-generation
  pipeline's own 256 would run past a small model's positions on any prompt, and its
  `handle_long_generation="hole"` (how it takes a prompt longer than the model) needs a
  `max_new_tokens` to know how much of the prompt to keep.

  Args:
    model: the run's `ModelConfig`.
    special_ids: the tokenizer's special ids (`Tokenizer.special_ids`).

  Returns:
    A `transformers.GenerationConfig` (save it with `save_pretrained`).
  """
  import transformers

  bos, eos = boundary_ids(special_ids)
  return transformers.GenerationConfig(
    bos_token_id=bos,
    eos_token_id=eos,
    pad_token_id=special_ids.get("pad"),
    max_new_tokens=min(PIPELINE_NEW_TOKENS, max(1, max_input_length(model) // 4)),
  )
