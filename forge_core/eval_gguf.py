"""GGUF files for backends that only run them (``eval.backend = "llamacpp"``).

Evaluation runs before the ``export`` stage, yet a GGUF backend evaluates what users
deploy: the quantised files. So the eval stage exports each model it compares with
the configured exporter, into ``eval/models/<label>/``, with the quantisation the
deploy stage serves (the first of ``export.quantizations``); the merged Hugging Face
copy each export makes on the way is deleted once its GGUF is written. The deployed
model is not exported again: its record names the GGUF that is being served.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forge_core.contracts import ExportRequest, ExportResult
from forge_core.plugins import PluginRegistry
from forge_core.progress import Progress
from forge_core.runs import RunError

__all__ = ["EvalModel", "GgufExport", "export_for_evaluation"]


@dataclass(frozen=True)
class EvalModel:
    """One model evaluation compares: its label in ``metrics.json`` and how to load it."""

    label: str
    model: str
    """A base model (folder or name), or a GGUF file once exported."""
    adapter: str | None = None
    gguf: str | None = None
    """An existing GGUF of this model (the deployed one's), used as it is."""


@dataclass(frozen=True)
class GgufExport:
    """The exporter plugin and its ``export`` settings."""

    exporter: str
    settings: dict[str, Any]


def export_for_evaluation(
    registry: PluginRegistry,
    export: GgufExport,
    models: list[EvalModel],
    folder: Path,
    progress: Progress,
) -> list[EvalModel]:
    """Each model as one GGUF file (exported into ``folder/<label>``), adapter merged in."""
    quantizations = list(export.settings.get("quantizations") or ["Q8_0"])
    settings = {**export.settings, "quantizations": quantizations[:1]}
    progress.start("exporting models to evaluate", len(models))
    ready = []
    for model in models:
        if model.gguf and Path(model.gguf).is_file():
            ready.append(EvalModel(model.label, model.gguf))
            progress.advance("exporting models to evaluate")
            continue
        request = ExportRequest(
            base_model=model.model,
            adapter_dir=model.adapter,
            output_dir=str(folder / model.label),
            settings=settings,
        )
        result = ExportResult.model_validate(registry.call("export", export.exporter, request))
        if not result.artifacts:
            raise RunError(f"exporter {export.exporter!r} wrote no file for model {model.label}")
        merged = Path(result.merged_model_dir) if result.merged_model_dir else None
        target = (folder / model.label).resolve()
        if merged is not None and merged.resolve().is_relative_to(target):  # never the base
            shutil.rmtree(merged, ignore_errors=True)
        ready.append(EvalModel(model.label, result.artifacts[0].path))
        progress.advance("exporting models to evaluate")
    progress.finish("exporting models to evaluate")
    return ready
