"""The loss curve PNG (refreshed at every evaluation)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_losses(history: list[dict[str, Any]], target: Path, title: str) -> Path:
    """Training loss per step and validation loss per evaluation, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from forge_core.files import atomic_path

    train = [(h["step"], h["loss"]) for h in history if "loss" in h]
    valid = [(h["step"], h["valid_loss"]) for h in history if "valid_loss" in h]
    figure, axis = plt.subplots(figsize=(7, 4), dpi=100)
    if train:
        axis.plot(*zip(*train, strict=True), label="train loss", color="#3b7dd8", linewidth=1.2)
    if valid:
        axis.plot(*zip(*valid, strict=True), "o-", label="validation loss", color="#e07b39")
    axis.set_xlabel("optimizer step")
    axis.set_ylabel("cross-entropy (assistant tokens)")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    with atomic_path(target) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)
    return target
