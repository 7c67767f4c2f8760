"""Forge's Ollama deploy target: a merged GGUF becomes an Ollama model.

The GGUF's Jinja chat template is translated into Ollama's Go template
(:mod:`forge_ollama.template`) and checked by rendering both
(:mod:`forge_ollama.gotemplate`); the model is created through the official
``ollama`` client (:mod:`forge_ollama.client`), and the equivalent Modelfile is
written for a manual ``ollama create``.
"""

__version__ = "0.1.0"
