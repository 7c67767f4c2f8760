"""The currently deployed model: what ``eval.gate.reference = "deployed"`` compares with.

Each successful ``deploy`` records which run's model it serves in
``<runs_dir>/deployed.json``; the last deploy wins, since that model is the one
answering now. A later run's evaluation can then score that model on its own test
split, next to the base and the new fine-tuned model, and the quality gate refuses
a candidate that is worse than what users already have, not merely worse than the base.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
from pydantic import BaseModel, ValidationError

from forge_core.files import write_json_atomic
from forge_core.runs import RunError

__all__ = [
    "DEPLOYED_FILE",
    "DeployedModel",
    "GateReference",
    "current_deployment",
    "gate_reference",
    "record_deployment",
]

#: The record's file name, directly in the runs folder.
DEPLOYED_FILE = "deployed.json"


class DeployedModel(BaseModel):
    """One deploy: the run, the model it serves, and where."""

    run_id: str
    run_dir: str
    target: str
    model_name: str
    endpoint: str
    base_model: str
    adapter_dir: str
    deployed_at: str
    artifact: str | None = None
    """The exported file the deployment serves (a GGUF)."""

    def key(self) -> str:
        """What identifies this deployed model: its run, adapter and deploy time."""
        return f"{self.run_dir}\0{self.adapter_dir}\0{self.deployed_at}"


def record_deployment(runs_dir: Path, model: DeployedModel) -> Path:
    """Write ``model`` as the currently deployed one (atomically); return the file."""
    path = runs_dir / DEPLOYED_FILE
    write_json_atomic(path, model.model_dump(mode="json"))
    return path


def current_deployment(runs_dir: Path) -> DeployedModel | None:
    """The last deploy's record from ``runs_dir``, or None when nothing was deployed.

    A record that cannot be read is an error that names the file and what to do.
    """
    path = runs_dir / DEPLOYED_FILE
    if not path.is_file():
        return None
    try:
        return DeployedModel.model_validate_json(path.read_bytes())
    except (OSError, ValidationError) as exc:
        raise RunError(
            f"{path} cannot be read as the deployed model's record ({exc}); "
            "deploy a model again, or delete the file to compare with the base model"
        ) from exc


def now_iso() -> str:
    """The current UTC time, to the second, for ``deployed_at``."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class GateReference:
    """The model the gate compares the fine-tuned one with."""

    label: str
    """``base`` or ``deployed``: its key in ``metrics.json``."""
    description: str
    """Which model that is, in words, for the report and the gate's verdict."""
    base_model: str | None = None
    """For ``deployed``: its base model and adapter, loaded by the eval backend."""
    adapter_dir: str | None = None
    gguf: str | None = None
    """For ``deployed``: the file it serves, for backends that run files."""
    note: str | None = None
    """Why the deployed model could not be the reference (the base is, then)."""
    key: str = "base"
    """Changes when the reference model does: part of the eval stage's inputs."""
    trained_paths: frozenset[str] = frozenset()
    """Files the deployed model was trained on (its run's train split), when known."""


def gate_reference(wanted: str, runs_dir: Path) -> GateReference:
    """The reference model for ``eval.gate.reference`` = ``wanted`` (base or deployed).

    ``deployed`` falls back to the base model, with a note saying why, when nothing
    has been deployed from ``runs_dir`` yet (a first run) or the deployed run's
    adapter is gone; a record that cannot be read is an error that names the file.
    """
    base = GateReference("base", "the base model")
    if wanted != "deployed":
        return base
    record = current_deployment(runs_dir)
    if record is None:
        path = runs_dir / DEPLOYED_FILE
        note = f"no model has been deployed from {runs_dir} yet ({path} does not exist)"
        return GateReference("base", "the base model", note=note, key="base:none deployed")
    if not Path(record.adapter_dir).is_dir():
        note = (
            f"the deployed model's adapter {record.adapter_dir} (run {record.run_id}) "
            "no longer exists"
        )
        return GateReference("base", "the base model", note=note, key=f"base:{record.key()}")
    description = f"the deployed model (run {record.run_id}, {record.model_name})"
    return GateReference(
        "deployed",
        description,
        record.base_model,
        record.adapter_dir,
        gguf=record.artifact,
        key=record.key(),
        trained_paths=trained_paths(Path(record.run_dir)),
    )


def trained_paths(run_dir: Path) -> frozenset[str]:
    """The files of a run's train split (empty when the run's split is gone)."""
    train = run_dir / "validate" / "train.jsonl"
    if not train.is_file():
        return frozenset()
    with open(train, "rb") as handle:
        return frozenset(str(orjson.loads(line)["path"]) for line in handle if line.strip())
