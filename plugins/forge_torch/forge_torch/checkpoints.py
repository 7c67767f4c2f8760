"""Checkpoints for exact resume: adapter, optimizer, scheduler, RNG and data position.

A checkpoint is a folder ``checkpoints/step-000050/`` written under a temporary
name and renamed when complete, with ``state.json`` written last inside it, so
a run killed while saving leaves either a whole checkpoint or none.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from peft import get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import load_file, save_file

KEEP_CHECKPOINTS = 2


@dataclass
class TrainerState:
    """Where training stands: everything besides tensors needed to continue exactly."""

    step: int = 0
    position: int = 0
    config_hash: str = ""
    best_valid_loss: float | None = None
    evals_without_improvement: int = 0
    trained_tokens: int = 0
    elapsed_seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)


def rng_state() -> dict[str, Any]:
    """Every random generator training touches."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    folder: Path,
    model: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    state: TrainerState,
) -> Path:
    """Write a complete checkpoint for ``state.step`` and prune old ones."""
    target = folder / f"step-{state.step:06d}"
    partial = folder / f".step-{state.step:06d}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    adapter = {
        k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(model).items()
    }
    save_file(adapter, partial / "adapter.safetensors")
    torch.save(optimizer.state_dict(), partial / "optimizer.pt")
    torch.save(scheduler.state_dict(), partial / "scheduler.pt")
    torch.save(rng_state(), partial / "rng.pt")
    (partial / "state.json").write_text(json.dumps(asdict(state)), encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)
    for old in sorted(folder.glob("step-*"))[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint, if any."""
    complete = [p for p in sorted(folder.glob("step-*")) if (p / "state.json").is_file()]
    return complete[-1] if complete else None


def load_checkpoint(
    path: Path, model: Any, optimizer: torch.optim.Optimizer, scheduler: Any
) -> TrainerState:
    """Restore a checkpoint into live objects; return the trainer state."""
    set_peft_model_state_dict(model, load_file(path / "adapter.safetensors"))
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=False))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=False))
    set_rng_state(torch.load(path / "rng.pt", weights_only=False))
    data = json.loads((path / "state.json").read_text(encoding="utf-8"))
    return TrainerState(**data)


def read_state(path: Path) -> TrainerState:
    """Only the trainer state of a checkpoint (to check compatibility before loading)."""
    return TrainerState(**json.loads((path / "state.json").read_text(encoding="utf-8")))
