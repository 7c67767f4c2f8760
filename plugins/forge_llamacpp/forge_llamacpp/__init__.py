"""Forge's llama.cpp plugin: the ``llamacpp`` deploy target and model backend.

:mod:`forge_llamacpp.server` runs llama-cpp-python's OpenAI-compatible server
as a managed process (pid file and log in the run's ``deploy/``);
:mod:`forge_llamacpp.backend` loads a GGUF in-process for evaluation.
"""

__version__ = "0.1.0"
