"""Hugging Face interop: `init_from = "hf:PATH_OR_ID"` imports, `jaxpretrain export` exports.

Modules: `source` (finding and reading checkpoints), `families` (BERT / RoBERTa / GPT-2 /
ModernBERT / Llama and their architectures), `import_config` (config.json → `config.model`),
`export_config` (`ModelConfig` → the transformers config), `mapping` (tensor name and layout
correspondence), `layout` (scanned vs per-layer parameters), `importer`, `exporter`. See docs/hf.md.
"""

from jaxpretrain.hf.exporter import export_run
from jaxpretrain.hf.importer import apply_hf_config, import_params, warm_start

__all__ = ["apply_hf_config", "export_run", "import_params", "warm_start"]
