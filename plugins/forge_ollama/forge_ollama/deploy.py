"""The ``ollama`` deploy target: merged GGUF → an Ollama model that answers chats.

Steps: read the GGUF's chat metadata → translate its template to Go and check
the translation → write the equivalent Modelfile into ``deploy/`` → reach the
server → upload the GGUF blob → create the model → one chat request to verify.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forge_core.contracts import DeployRequest, DeployResult
from forge_ollama.client import Ollama, OllamaError, OllamaUnavailable, resolve_host
from forge_ollama.gguf_info import ChatInfo, GGUFReadError, read_chat_info
from forge_ollama.modelfile import ModelSpec, model_name, write_modelfile
from forge_ollama.template import TemplateError, check_translation, translate_chat_template


@dataclass(frozen=True)
class OllamaOptions:
    """The ``deploy`` settings this target reads (absent keys take these defaults)."""

    host: str
    template: str | None = None
    system: str | None = None
    num_ctx: int | None = None
    verify: bool = True

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> OllamaOptions:
        """Read ``ollama_host``, ``ollama_template``, ``system_prompt``, ``n_ctx``, ``verify``."""
        num_ctx = settings.get("n_ctx")
        return cls(
            host=resolve_host(settings.get("ollama_host")),
            template=settings.get("ollama_template") or None,
            system=settings.get("system_prompt") or None,
            num_ctx=int(num_ctx) if num_ctx else None,
            verify=bool(settings.get("verify", True)),
        )


def ollama_template(info: ChatInfo, options: OllamaOptions) -> tuple[str, list[str]]:
    """The Go template for the model, and notes on what was approximated."""
    if options.template:
        return options.template, ["template given by deploy.ollama_template (not checked)"]
    if not info.chat_template:
        raise OllamaError(
            "the GGUF has no chat template (tokenizer.chat_template); pass an Ollama "
            "template as deploy.ollama_template"
        )
    # Ollama's runner adds BOS itself when the vocabulary asks for it.
    bos = "" if info.add_bos else info.bos_token
    try:
        translated = translate_chat_template(
            info.chat_template, bos_token=bos, eos_token=info.eos_token
        )
        check_translation(
            info.chat_template,
            translated.text,
            bos_token=bos,
            eos_token=info.eos_token,
            system=options.system,
        )
    except TemplateError as exc:
        raise OllamaError(str(exc)) from exc
    return translated.text, list(translated.notes)


def plan_model(
    request: DeployRequest, info: ChatInfo, options: OllamaOptions
) -> tuple[ModelSpec, list[str]]:
    """Everything ``ollama create`` gets besides the GGUF, and notes on the way."""
    template, notes = ollama_template(info, options)
    parameters: dict[str, Any] = {"num_ctx": options.num_ctx} if options.num_ctx else {}
    if not info.end_of_turn:
        notes.append("the GGUF names no end-of-turn token: no stop parameter was set")
    spec = ModelSpec(
        name=model_name(request.model_name),
        template=template,
        stop=info.end_of_turn,
        system=options.system,
        parameters=parameters,
    )
    return spec, notes


def deploy_to_ollama(request: DeployRequest) -> DeployResult:
    """Create the model in Ollama from the exported GGUF and check it answers."""
    options = OllamaOptions.from_settings(request.settings)
    gguf = Path(request.artifact.path)
    try:
        info = read_chat_info(gguf)
    except GGUFReadError as exc:
        raise OllamaError(str(exc)) from exc
    spec, notes = plan_model(request, info, options)
    try:
        modelfile = write_modelfile(spec, gguf, Path(request.output_dir))
    except ValueError as exc:  # text a Modelfile cannot quote
        raise OllamaError(f"cannot write the Modelfile: {exc}") from exc

    server = Ollama(options.host)
    try:
        version = server.version()
    except OllamaUnavailable as exc:
        raise OllamaUnavailable(
            f"{exc}; or create the model by hand: `ollama create {spec.name} -f {modelfile}`"
        ) from exc
    digest, uploaded = server.push_blob(gguf)
    server.create(spec, digest)
    reply = None
    if options.verify:
        try:
            reply = server.verify(spec.name)
        except OllamaError:
            with contextlib.suppress(OllamaError):  # not left behind as if deployed
                server.remove(spec.name)
            raise
    return DeployResult(
        target="ollama",
        model_name=spec.name,
        endpoint=f"{options.host}/v1",
        pid=None,
        details={
            "ollama_host": options.host,
            "ollama_version": version,
            "gguf": str(gguf),
            "digest": digest,
            "uploaded": uploaded,
            "modelfile": str(modelfile),
            "template": spec.template,
            "stop": list(spec.stop),
            "system": spec.system,
            "verify_reply": reply,
            "notes": notes,
        },
    )
