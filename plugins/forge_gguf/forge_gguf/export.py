"""The ``export`` stage: merge → convert to F16 GGUF → quantise → check fidelity.

Files written under the request's ``output_dir``::

    merged/                 the merged Hugging Face model (fp32 safetensors + tokenizer)
    model-<QUANT>.gguf      one per requested quantisation (F16, Q8_0, Q4_K_M, ...)

Every file is written under a temporary name and renamed when complete. Each
artifact carries its fidelity figures and whether it passed its gate; the core
stops the run on an artifact that did not pass.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from forge_core.contracts import ExportArtifact, ExportRequest, ExportResult
from forge_gguf.fidelity import DEFAULT_MIN_TOP1

logger = logging.getLogger(__name__)


class ExportOptions(BaseModel):
    """The keys of the ``export`` section this plugin reads (others belong to the core)."""

    model_config = ConfigDict(extra="ignore")

    quantizations: list[str] = Field(default_factory=lambda: ["Q8_0"])
    fidelity_positions: int = Field(default=256, gt=1)
    fidelity_file: str | None = None
    min_top1: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_MIN_TOP1))
    pre_tokenizer: str | None = None
    threads: int | None = Field(default=None, gt=0)
    model_name: str | None = None
    extra_buffer_types: bool = False


def read_held_out(path: str | None) -> list[str] | None:
    """Texts from ``export.fidelity_file``: JSONL (``text`` or chat ``messages``) or plain text."""
    if path is None:
        return None
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"export.fidelity_file {file} does not exist")
    content = file.read_text("utf-8")
    if file.suffix != ".jsonl":
        return [content]
    texts: list[str] = []
    for line in content.splitlines():
        if not line.strip():
            continue
        record: dict[str, Any] = json.loads(line)
        if "text" in record:
            texts.append(str(record["text"]))
        else:
            texts.extend(str(m["content"]) for m in record.get("messages", []))
    return texts


def export_model(request: ExportRequest) -> ExportResult:
    """Run the whole export for one request."""
    from forge_gguf.convert import convert
    from forge_gguf.fidelity import FidelityChecker
    from forge_gguf.merge import merge_adapter
    from forge_gguf.quantize import check_quantizations, quantize

    options = ExportOptions.model_validate(request.settings)
    quantizations = check_quantizations(options.quantizations)
    output_dir = Path(request.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    merged = merge_adapter(request.base_model, request.adapter_dir, output_dir / "merged")
    f16_path = output_dir / "model-F16.gguf"
    intermediate = f16_path if "F16" in quantizations else output_dir / ".intermediate-F16.gguf"
    report = convert(
        merged,
        intermediate,
        name=options.model_name or Path(request.base_model).name or "forge",
        pre_tokenizer=options.pre_tokenizer,
    )
    for note in report.notes:
        logger.warning("export: %s", note)
    checker = FidelityChecker(
        merged,
        positions=options.fidelity_positions,
        held_out=read_held_out(options.fidelity_file),
        min_top1=options.min_top1,
        threads=options.threads,
        extra_buffer_types=options.extra_buffer_types,
    )
    artifacts: list[ExportArtifact] = []
    try:
        for quantization in quantizations:
            target = output_dir / f"model-{quantization}.gguf"
            if target == intermediate:  # F16 is the converter's own output
                fallback = {"fallback_tensors": 0.0, "f16_fallback_file": 0.0}
            else:
                done = quantize(intermediate, target, quantization, threads=options.threads)
                fallback = {
                    "fallback_tensors": float(done.fallback_tensors),
                    "f16_fallback_file": float(done.f16_fallback_file),
                    "f16_tensors": float(done.f16_tensors),
                    "quantize_seconds": round(done.seconds, 3),
                }
            fidelity, passed = checker.check(target, quantization)
            artifacts.append(
                ExportArtifact(
                    path=str(target),
                    format="gguf",
                    quantization=quantization,
                    size_bytes=target.stat().st_size,
                    fidelity={**fidelity, **fallback},
                    passed=passed,
                )
            )
    finally:
        if intermediate != f16_path:
            intermediate.unlink(missing_ok=True)
    return ExportResult(artifacts=artifacts, merged_model_dir=str(merged))
