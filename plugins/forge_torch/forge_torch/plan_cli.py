"""``forge plan``: estimate training memory and pick settings that fit."""

from __future__ import annotations

import platform
from pathlib import Path

import click

from forge_torch.plan import (
    GIB,
    KNOWN_SHAPES,
    USABLE_FRACTION,
    choose,
    device_memory_bytes,
    device_weight_bytes,
    estimate,
    precision_name,
    shape_from_config,
)


def device_memory() -> tuple[str, float]:
    """(device kind, bytes) of the device training would use here."""
    import torch

    if torch.cuda.is_available():
        return "cuda", float(torch.cuda.get_device_properties(0).total_memory)
    kind = "mps" if platform.system() == "Darwin" else "cpu"
    return kind, device_memory_bytes(kind)


@click.command("plan")
@click.argument("model")
@click.option("--seq-len", default=2048, show_default=True, help="Training sequence length.")
@click.option("--rank", default=16, show_default=True)
@click.option("--memory-gb", type=float, help="Device memory (default: this machine's).")
@click.option(
    "--device",
    type=click.Choice(["cuda", "mps", "cpu"]),
    help="Device kind (default: this machine's).",
)
def plan(model: str, seq_len: int, rank: int, memory_gb: float | None, device: str | None) -> None:
    """Estimate peak memory for MODEL (a model folder, config.json, or 1.5b/3b/7b/13b)."""
    from rich.console import Console
    from rich.table import Table

    if model.lower() in KNOWN_SHAPES:
        shape = KNOWN_SHAPES[model.lower()]
    elif Path(model).exists():
        shape = shape_from_config(Path(model))
    else:
        raise click.BadParameter(
            f"{model!r} is neither a model folder, a config.json, nor one of "
            f"{', '.join(KNOWN_SHAPES)}",
            param_hint="MODEL",
        )
    detected_kind, detected_bytes = device_memory()
    kind = device or detected_kind
    memory = memory_gb * GIB if memory_gb else detected_bytes
    weight_bytes = device_weight_bytes(kind)
    precision = precision_name(weight_bytes)
    quantize_options = (False, True) if kind == "cuda" else (False,)
    table = Table(title=f"{shape.name}: {shape.parameters / 1e9:.2f}B parameters, seq {seq_len}")
    for column in ("base", "checkpointing", "batch 1 peak (GiB)"):
        table.add_column(column)
    for quantize in quantize_options:
        for checkpointing in (False, True):
            guess = estimate(
                shape,
                seq_len=seq_len,
                batch=1,
                rank=rank,
                quantize_4bit=quantize,
                gradient_checkpointing=checkpointing,
                weight_bytes=weight_bytes,
            )
            table.add_row(
                "4-bit NF4" if quantize else precision,
                "yes" if checkpointing else "no",
                f"{guess.total / GIB:.1f}",
            )
    console = Console()
    console.print(table)
    # The trainer runs 4-bit (bitsandbytes) only on CUDA, and fp32 on CPU and MPS.
    chosen = choose(
        shape,
        memory,
        seq_len=seq_len,
        rank=rank,
        allow_4bit=kind == "cuda",
        weight_bytes=weight_bytes,
        usable_fraction=USABLE_FRACTION[kind],
    )
    smallest = "4-bit and checkpointing" if kind == "cuda" else "checkpointing at batch 1"
    verdict = "fits" if chosen.fits else f"does NOT fit even with {smallest}"
    console.print(
        f"{kind} with {memory / GIB:.0f} GiB: {chosen.label} "
        f"(≈{chosen.estimate.total / GIB:.1f} GiB) — {verdict}"
    )
    console.print(
        f"settings: --set train.quantize_4bit={str(chosen.quantize_4bit).lower()} "
        f"--set train.gradient_checkpointing={str(chosen.gradient_checkpointing).lower()} "
        f"--set train.batch_size={chosen.batch_size} --set train.max_seq_len={seq_len}"
    )
