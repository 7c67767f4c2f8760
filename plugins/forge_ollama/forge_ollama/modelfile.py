"""The Ollama model definition: name, template, parameters, and the equivalent Modelfile."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Forge's models in Ollama are named with this prefix (``forge ollama list`` shows them).
PREFIX = "forge-"


@dataclass(frozen=True)
class ModelSpec:
    """What ``ollama create`` needs besides the GGUF itself."""

    name: str
    template: str
    stop: tuple[str, ...]
    system: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)

    def create_parameters(self) -> dict[str, Any]:
        """The ``parameters`` of the create request (``stop`` first, then the rest)."""
        parameters: dict[str, Any] = {"stop": list(self.stop)} if self.stop else {}
        parameters.update(self.parameters)
        return parameters


def model_name(requested: str) -> str:
    """An Ollama model name for Forge: lower case, safe characters, ``forge-`` prefix."""
    name = re.sub(r"[^a-z0-9._-]+", "-", requested.strip().lower()).strip("-.") or "model"
    return name if name.startswith(PREFIX) else PREFIX + name


def is_forge_model(name: str) -> bool:
    """Whether an Ollama model (``name[:tag]``, possibly namespaced) is one of Forge's."""
    return name.rsplit("/", 1)[-1].startswith(PREFIX)


def _triple_quoted(keyword: str, text: str) -> str:
    if '"""' in text:
        raise ValueError(f'the {keyword} contains """, which a Modelfile cannot quote')
    return f'{keyword} """{text}"""'


def _quoted(text: str) -> str:
    if any(char in text for char in '"\n'):
        return json.dumps(text)
    return f'"{text}"'


def render_modelfile(spec: ModelSpec, source: str) -> str:
    """The Modelfile equivalent to the create request, for a manual ``ollama create``."""
    lines = [
        f"# Forge model {spec.name}: `ollama create {spec.name} -f Modelfile` in this folder",
        f"FROM {source}",
        _triple_quoted("TEMPLATE", spec.template),
    ]
    lines += [f"PARAMETER stop {_quoted(stop)}" for stop in spec.stop]
    lines += [f"PARAMETER {key} {value}" for key, value in spec.parameters.items()]
    if spec.system:
        lines.append(_triple_quoted("SYSTEM", spec.system))
    return "\n".join(lines) + "\n"


def link_model(gguf: Path, folder: Path) -> str:
    """Put ``model.gguf`` beside the Modelfile (a relative symlink) and return the FROM path.

    Where symlinks are not allowed, FROM points at the exported file instead.
    """
    link = folder / "model.gguf"
    target = os.path.relpath(gguf.resolve(), folder.resolve())
    try:
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
    except OSError:
        return target if not Path(target).is_absolute() else str(gguf.resolve())
    return "./model.gguf"


def write_modelfile(spec: ModelSpec, gguf: Path, folder: Path) -> Path:
    """Write ``Modelfile`` (and the ``model.gguf`` link) into the deploy folder, atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    text = render_modelfile(spec, link_model(gguf, folder))
    path = folder / "Modelfile"
    partial = folder / "Modelfile.partial"
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
    return path
