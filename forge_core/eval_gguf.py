"""GGUF files for backends that only run them (``eval.backend = "llamacpp"``).

Evaluation runs before the ``export`` stage, yet a GGUF backend evaluates what users
deploy: the quantised files. So the eval stage exports each model it compares with
the configured exporter, into ``eval/models/<label>/``, with the quantisation the
deploy stage serves (the first of ``export.quantizations``); the folders an export
leaves on the way (forge-gguf's merged Hugging Face copy) are deleted, whether or not
it succeeds. The deployed model is not exported again while the GGUF it serves still
has the content it was deployed with.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forge_core.contracts import ExportRequest, ExportResult
from forge_core.files import sha256_file
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
    """An existing GGUF of this model (the deployed one's), used as it is when its
    content still has ``gguf_sha256``; exported again otherwise."""
    gguf_sha256: str | None = None


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
        if model.gguf and model.gguf_sha256 and _unchanged(Path(model.gguf), model.gguf_sha256):
            ready.append(EvalModel(model.label, model.gguf))
        else:
            path = _export_one(registry, export, settings, model, folder / model.label, progress)
            ready.append(EvalModel(model.label, path))
        progress.advance("exporting models to evaluate")
    progress.finish("exporting models to evaluate")
    return ready


def _unchanged(path: Path, sha256: str) -> bool:
    return path.is_file() and sha256_file(path) == sha256


def _export_one(
    registry: PluginRegistry,
    export: GgufExport,
    settings: dict[str, Any],
    model: EvalModel,
    target: Path,
    progress: Progress,
) -> str:
    """Export one model into ``target`` (a folder of its own); return its first file.

    Only files are kept there: the folders the exporter made on the way (a merged
    model) are deleted afterwards, also when it fails. Nothing outside ``target`` is.
    """
    request = ExportRequest(
        base_model=model.model,
        adapter_dir=model.adapter,
        output_dir=str(target),
        settings=settings,
    )
    try:
        result = ExportResult.model_validate(registry.call("export", export.exporter, request))
    finally:
        for leftover in target.iterdir() if target.is_dir() else ():
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
    if not result.artifacts:
        raise RunError(f"exporter {export.exporter!r} wrote no file for model {model.label}")
    artifact = result.artifacts[0]
    if not artifact.passed:
        progress.warn(
            f"the {model.label} model's {artifact.quantization} file failed its fidelity check "
            f"({artifact.fidelity}); it is evaluated as it is"
        )
    return artifact.path
