"""Stage 1: plain causal language modelling on packed windows of the corpus."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from forge_tinycoder.data import evaluation_windows, sample_batch
from forge_tinycoder.loop import Batch, StageConfig, run_stage
from forge_tinycoder.presets import Preset

#: Held-out windows per language scored at each evaluation during training.
EVAL_WINDOWS = 16


def causal_loss(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, int]:
    """Mean next-token cross-entropy of a batch of windows (``seq_len + 1`` tokens each)."""
    windows = batch["windows"]
    logits = model(input_ids=windows[:, :-1]).logits
    targets = windows[:, 1:]
    loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1))
    return loss, targets.numel()


def heldout_evaluator(
    heldout: dict[str, np.ndarray], width: int, device: torch.device
) -> Callable[[torch.nn.Module], dict[str, float]]:
    """A function giving the held-out loss per language on fixed windows."""
    windows = {name: evaluation_windows(s, width, EVAL_WINDOWS) for name, s in heldout.items()}

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        figures = {}
        for name, batch in windows.items():
            if len(batch) == 0:
                continue
            losses = [
                float(causal_loss(model, {"windows": batch[i : i + 4].to(device)})[0])
                for i in range(0, len(batch), 4)
            ]
            figures[f"valid_loss_{name}"] = sum(losses) / len(losses)
        if figures:
            figures["valid_loss"] = sum(figures.values()) / len(figures)
        return figures

    return evaluate


def pretrain(
    model: torch.nn.Module,
    preset: Preset,
    streams: dict[str, np.ndarray],
    heldout: dict[str, np.ndarray],
    folder: Path,
    device: torch.device,
    budget_seconds: float,
    max_steps: int | None,
    seed: int,
) -> dict[str, Any]:
    """Pretrain ``model`` on random windows of ``streams`` for the budget.

    With ``preset.short_seq_len``, the first ``preset.short_share`` of the schedule
    draws shorter windows (more rows, the same tokens per step).
    """
    width = preset.seq_len + 1

    def next_batch(step: int, progress: float) -> dict[str, torch.Tensor]:
        if preset.short_seq_len and progress < preset.short_share:
            rows = preset.batch_rows * preset.seq_len // preset.short_seq_len
            return {"windows": sample_batch(streams, rows, preset.short_seq_len + 1, seed, step)}
        return {"windows": sample_batch(streams, preset.batch_rows, width, seed, step)}

    config = StageConfig(
        name="pretrain",
        peak_lr=preset.learning_rate,
        budget_seconds=budget_seconds,
        max_steps=max_steps,
        eval_every_seconds=max(30.0, budget_seconds / 12),
        checkpoint_every_seconds=max(60.0, min(300.0, budget_seconds / 10)),
        compile=preset.compile,
    )
    return run_stage(
        model,
        config,
        folder,
        device,
        next_batch,
        causal_loss,
        heldout_evaluator(heldout, width, device),
    )
