"""forge_gguf hook implementation (torch, transformers and llama.cpp load inside the hook)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forge_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from forge_core.contracts import ExportRequest, ExportResult


@hookimpl
def export(request: ExportRequest) -> ExportResult:
    """Merge the adapter, write GGUF files (F16 and quantised) and check their fidelity."""
    from forge_gguf.export import export_model

    return export_model(request)
