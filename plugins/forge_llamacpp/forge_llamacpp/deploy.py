"""The ``llamacpp`` deploy target: serve a GGUF with llama-cpp-python's OpenAI-compatible server.

Steps: check the GGUF (it loads, it carries a chat template) → stop this run's
previous server → start the server (a free port if the configured one is
taken) → wait until ``/v1/models`` lists the model → one one-token chat request
(the model decodes) → report the endpoint, pid and the system prompt clients send.

llama-cpp-python's server has no default system prompt, so the one the model was
trained with (``deploy.system_prompt``, filled in by the pipeline) is recorded in
the result's ``details["system_prompt"]`` for clients to send.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forge_core.contracts import DeployRequest, DeployResult
from forge_llamacpp.gguf import inspect_gguf
from forge_llamacpp.server import GGUF_CHAT_FORMAT, LlamaCppError, start_server, stop_server

log = logging.getLogger("forge_llamacpp")

#: The context size served when neither the settings nor a smaller model say otherwise.
DEFAULT_MAX_CONTEXT = 4096


@dataclass(frozen=True)
class ServeOptions:
    """The ``deploy`` settings this target reads (absent keys take these defaults)."""

    host: str = "127.0.0.1"
    port: int = 8088
    n_ctx: int | None = None
    startup_timeout: float = 120.0
    chat_format: str | None = None
    system_prompt: str | None = None

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> ServeOptions:
        """Read the target's keys of the ``deploy`` section (the fields above)."""
        n_ctx = settings.get("n_ctx")
        return cls(
            host=str(settings.get("host") or cls.host),
            port=int(settings.get("port") or cls.port),
            n_ctx=int(n_ctx) if n_ctx else None,
            startup_timeout=float(settings.get("startup_timeout") or cls.startup_timeout),
            chat_format=settings.get("chat_format") or None,
            system_prompt=settings.get("system_prompt") or None,
        )


def deploy_llamacpp(request: DeployRequest) -> DeployResult:
    """Start (or restart) the run's llama.cpp server for the exported GGUF."""
    options = ServeOptions.from_settings(request.settings)
    gguf = Path(request.artifact.path)
    facts = inspect_gguf(gguf)
    if facts.chat_template is None and options.chat_format is None:
        raise LlamaCppError(
            f"{gguf} has no chat template (tokenizer.chat_template), so the server would "
            "format chats in a default style the model was not trained on; re-export it "
            "with forge-gguf, or name a llama-cpp-python chat format in deploy.chat_format"
        )
    folder = Path(request.output_dir)
    notes: list[str] = []
    previous = stop_server(folder)
    if previous is not None:
        notes.append(f"stopped this run's previous server (pid {previous})")
    n_ctx = options.n_ctx or min(facts.context_length or DEFAULT_MAX_CONTEXT, DEFAULT_MAX_CONTEXT)
    chat_format = options.chat_format or GGUF_CHAT_FORMAT
    server = start_server(
        gguf,
        folder,
        host=options.host,
        port=options.port,
        n_ctx=n_ctx,
        alias=request.model_name,
        timeout=options.startup_timeout,
        chat_format=chat_format,
    )
    for note in server.notes:
        log.warning(note)
    notes += server.notes
    return DeployResult(
        target="llamacpp",
        model_name=request.model_name,
        endpoint=server.endpoint,
        pid=server.pid,
        details={
            "log": str(server.log_file),
            "pid_file": str(server.pid_file),
            "gguf": str(gguf),
            "host": server.host,
            "port": server.port,
            "n_ctx": n_ctx,
            "chat_format": chat_format,
            "stop": facts.eos_token,
            "system_prompt": options.system_prompt,
            "notes": notes,
        },
    )
