"""Quantise an F16 GGUF with llama.cpp (``llama_cpp.llama_model_quantize``).

llama.cpp chooses per-tensor types itself (Q4_K_M keeps some tensors in Q6_K)
and falls back where a tensor's row width does not fit the block size: a k-quant
(256-wide blocks) drops to a 32-wide type, and a width that is not a multiple of
32 goes to F16. Those fallbacks are counted from the written file and reported.
If llama.cpp refuses the file altogether, the F16 data is kept under the
requested name and the artifact says so (``f16_fallback_file``).

Quantisation runs in a child process: llama.cpp aborts the process on some
errors, and an export must survive that to report it.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import gguf

logger = logging.getLogger(__name__)

#: Quantisations offered; each maps to ``llama_cpp.LLAMA_FTYPE_MOSTLY_<NAME>``.
SUPPORTED = ("F16", "BF16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_0", "Q4_K_M", "Q4_K_S", "Q4_0")


class QuantizeError(RuntimeError):
    """llama.cpp could not quantise the file."""


@dataclass
class QuantizeReport:
    """What quantising one file did."""

    path: Path
    quantization: str
    fallback_tensors: int
    f16_tensors: int
    f16_fallback_file: bool
    seconds: float


def check_quantizations(names: list[str]) -> list[str]:
    """Upper-case, de-duplicated quantisation names; an unknown one is an error."""
    wanted: list[str] = []
    for name in names:
        upper = name.upper()
        if upper not in SUPPORTED:
            raise ValueError(
                f"export.quantizations: {name!r} is not supported; "
                f"choose from {', '.join(SUPPORTED)}"
            )
        if upper not in wanted:
            wanted.append(upper)
    return wanted


def block_type(quantization: str) -> gguf.GGMLQuantizationType:
    """The ggml type whose block size a quantisation needs (``Q4_K_M`` → ``Q4_K``)."""
    if quantization in ("F16", "BF16"):
        return gguf.GGMLQuantizationType[quantization]
    parts = quantization.split("_")
    return gguf.GGMLQuantizationType["_".join(parts[:2])]


def count_fallbacks(path: Path, quantization: str) -> tuple[int, int]:
    """(tensors too narrow for the quantisation's block, 2-D tensors left in F16) in a GGUF."""
    block = gguf.GGML_QUANT_SIZES[block_type(quantization)][0]
    reader = gguf.GGUFReader(path)
    narrow = f16 = 0
    for tensor in reader.tensors:
        if len(tensor.shape) < 2:
            continue
        if int(tensor.shape[0]) % block:
            narrow += 1
        if tensor.tensor_type == gguf.GGMLQuantizationType.F16:
            f16 += 1
    return narrow, f16


def _run_llama_quantize(source: Path, target: Path, quantization: str, threads: int) -> None:
    """Child process body: one ``llama_model_quantize`` call."""
    import ctypes

    import llama_cpp

    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{quantization}")
    params.nthread = threads
    status = llama_cpp.llama_model_quantize(
        str(source).encode(), str(target).encode(), ctypes.byref(params)
    )
    if status != 0:
        raise SystemExit(f"llama_model_quantize returned {status}")


def quantize(
    source: Path, target: Path, quantization: str, *, threads: int | None = None
) -> QuantizeReport:
    """Write ``target`` as ``quantization`` of the F16 GGUF ``source`` (atomically)."""
    import time

    started = time.perf_counter()
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    whole_file_fallback = False
    if quantization == "F16":
        shutil.copyfile(source, partial)
    else:
        command = [
            sys.executable,
            "-m",
            "forge_gguf.quantize",
            str(source),
            str(partial),
            quantization,
            str(threads or os.cpu_count() or 1),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not partial.is_file():
            tail = (done.stderr or done.stdout)[-2000:]
            logger.warning(
                "llama.cpp refused to quantise %s to %s; keeping F16 data:\n%s",
                source,
                quantization,
                tail,
            )
            partial.unlink(missing_ok=True)
            shutil.copyfile(source, partial)
            whole_file_fallback = True
    os.replace(partial, target)
    narrow, f16 = count_fallbacks(target, quantization)
    if narrow:
        logger.info(
            "%s: %d tensors too narrow for %s blocks fell back", target, narrow, quantization
        )
    return QuantizeReport(
        path=target,
        quantization=quantization,
        fallback_tensors=narrow if quantization != "F16" else 0,
        f16_tensors=f16,
        f16_fallback_file=whole_file_fallback,
        seconds=time.perf_counter() - started,
    )


if __name__ == "__main__":
    _run_llama_quantize(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
