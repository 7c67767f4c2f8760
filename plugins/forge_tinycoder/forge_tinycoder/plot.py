"""The loss curve of a training run (PNG): pretraining and instruction stages side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from forge_tinycoder.loop import read_history


def plot_training(run_dir: Path, target: Path) -> Path:
    """Plot train and held-out losses of both stages of the run in ``run_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pretrain = read_history(run_dir / "pretrain")
    if not pretrain:  # a run continued with --from-model: the instruction stage only
        figure, right = plt.subplots(1, 1, figsize=(6, 4), dpi=100)
        left = None
    else:
        figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    if left is not None:
        _plot_pretraining(left, pretrain)
    instruct = read_history(run_dir / "instruct")
    steps = [(h["step"], h["loss"]) for h in instruct if "loss" in h]
    if steps:
        right.plot(*zip(*steps, strict=True), label="train (mixed batches)", color="#3b7dd8")
    valid = [(h["step"], h["valid_answer_loss"]) for h in instruct if "valid_answer_loss" in h]
    if valid:
        right.plot(*zip(*valid, strict=True), "o-", label="held-out answers", color="#e07b39")
    right.set_xlabel("optimizer step")
    right.set_ylabel("cross-entropy (nats/token)")
    right.set_title("instruction stage (RAFT)")
    for axis in (left, right):
        if axis is not None:
            axis.grid(alpha=0.3)
            axis.legend()
    figure.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.stem + ".tmp.png")
    figure.savefig(temporary, format="png")
    plt.close(figure)
    temporary.replace(target)
    return target


def _plot_pretraining(left: Any, pretrain: list[dict[str, Any]]) -> None:
    """Training and per-language held-out loss against tokens seen."""
    train = [(h["tokens"] / 1e6, h["loss"]) for h in pretrain if "loss" in h]
    if train:
        left.plot(*zip(*train, strict=True), label="train", color="#3b7dd8", linewidth=1)
    for name, colour in (("python", "#e07b39"), ("go", "#2a9d8f"), ("javascript", "#b5179e")):
        points = [
            (h["tokens"] / 1e6, h[f"valid_loss_{name}"])
            for h in pretrain
            if f"valid_loss_{name}" in h
        ]
        if points:
            left.plot(*zip(*points, strict=True), "o-", label=f"held-out {name}", color=colour)
    left.set_xlabel("tokens seen (millions)")
    left.set_ylabel("cross-entropy (nats/token)")
    left.set_title("pretraining")
