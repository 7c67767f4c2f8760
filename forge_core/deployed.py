"""The currently deployed model: what ``eval.gate.reference = "deployed"`` compares with.

Each successful ``deploy`` records which run's model it serves in
``<runs_dir>/deployed.json``; the last deploy wins, since that model is the one
answering now. A later run's evaluation can then score that model on its own test
split, next to the base and the new fine-tuned model, and the quality gate refuses
a candidate that is worse than what users already have, not merely worse than the base.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
from pydantic import BaseModel, Field, ValidationError

from forge_core.eval_gguf import EvalModel
from forge_core.files import write_json_atomic
from forge_core.runs import RunError

__all__ = [
    "DEPLOYED_FILE",
    "DeployedModel",
    "GateReference",
    "current_deployment",
    "deployment_caption",
    "gate_reference",
    "pinned_adapter_dir",
    "record_deployment",
    "trained_paths",
]

#: The record's file name, directly in the runs folder.
DEPLOYED_FILE = "deployed.json"
#: The folder, next to it, holding a copy of the deployed adapter.
DEPLOYED_FOLDER = "deployed"


class DeployedModel(BaseModel):
    """One deploy: the run, the model it serves and where, pinned as it was then."""

    run_id: str
    run_dir: str
    target: str
    model_name: str
    endpoint: str
    base_model: str
    adapter_dir: str
    """A copy of the deployed adapter (``<runs_dir>/deployed/adapter``): retraining the
    run in place later must not change what the deployed model is."""
    model_hash: str
    """The train stage's output hash: which adapter this is."""
    deployed_at: str
    artifact: str | None = None
    """The exported file the deployment serves (a GGUF)."""
    artifact_sha256: str | None = None
    trained_paths: list[str] = Field(default_factory=list)
    """The files of the run's train split."""
    split_by: str = "file"


def pinned_adapter_dir(runs_dir: Path) -> Path:
    """Where the deployed adapter's copy lives: ``<runs_dir>/deployed/adapter``."""
    return (runs_dir / DEPLOYED_FOLDER / "adapter").resolve()


def record_deployment(runs_dir: Path, record: DeployedModel, adapter: Path) -> None:
    """Copy ``adapter`` to ``record.adapter_dir`` (the pinned copy) and write ``record``
    as the deployed model. The copy is made under a temporary name and swapped in,
    then the record is written atomically."""
    pinned = Path(record.adapter_dir)
    partial = pinned.with_name(pinned.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(adapter, partial)
    shutil.rmtree(pinned, ignore_errors=True)
    partial.rename(pinned)
    write_json_atomic(runs_dir / DEPLOYED_FILE, record.model_dump(mode="json"))


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


def deployment_caption(runs_dir: Path) -> str | None:
    """One line saying which run is deployed (for ``forge runs list``), or None."""
    try:
        record = current_deployment(runs_dir)
    except RunError as exc:  # say so, but let the listing be shown
        return f"deployed: unknown ({exc})"
    if record is None:
        return None
    return (
        f"deployed: run {record.run_id} as {record.model_name} at {record.endpoint} "
        f"({record.target}, {record.deployed_at})"
    )


def now_iso() -> str:
    """The current UTC time, to the second, for ``deployed_at``."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class GateReference:
    """The model the gate compares the fine-tuned one with: the base, or the deployed one."""

    description: str = "the base model"
    """Which model that is, in words, for the report and the gate's verdict."""
    model: EvalModel | None = None
    """The deployed model (labelled ``deployed``), or None for the base."""
    note: str | None = None
    """Why the deployed model could not be the reference (the base is, then)."""
    key: str = "base"
    """Changes when the reference model does: part of the eval stage's inputs."""
    trained_paths: frozenset[str] = frozenset()
    """Files the deployed model was trained on (its run's train split), when known."""

    @property
    def label(self) -> str:
        """The reference's key in ``metrics.json``: ``base`` or ``deployed``."""
        return "base" if self.model is None else self.model.label


def gate_reference(
    wanted: str, runs_dir: Path, candidate_hash: str, split_by: str = "file"
) -> GateReference:
    """The reference model for ``eval.gate.reference`` = ``wanted`` (base or deployed).

    ``deployed`` falls back to the base model, with a note saying why, when nothing has
    been deployed from ``runs_dir`` yet (a first run), when the candidate is the deployed
    model itself (``candidate_hash``: its train stage's output hash), or when the pinned
    adapter is gone; a record that cannot be read is an error that names the file.
    Test questions the deployed model trained on are counted only for splits by file
    (split by unit, every split shares files by design).
    """
    if wanted != "deployed":
        return GateReference()
    record = current_deployment(runs_dir)
    if record is None:
        path = runs_dir / DEPLOYED_FILE
        return GateReference(
            note=f"no model has been deployed from {runs_dir} yet ({path} does not exist)"
        )
    if record.model_hash == candidate_hash:
        return GateReference(note=f"the fine-tuned model is the deployed one (run {record.run_id})")
    if not Path(record.adapter_dir).is_dir():
        return GateReference(
            note=f"the deployed model's adapter copy {record.adapter_dir} no longer exists"
        )
    counted = split_by == "file" and record.split_by == "file"
    model = EvalModel(
        "deployed", record.base_model, record.adapter_dir, record.artifact, record.artifact_sha256
    )
    return GateReference(
        f"the deployed model (run {record.run_id}, {record.model_name})",
        model,
        key=record.model_hash,
        trained_paths=frozenset(record.trained_paths) if counted else frozenset(),
    )


def trained_paths(train_file: Path) -> list[str]:
    """The distinct files of a train split (``validate/train.jsonl``), sorted."""
    if not train_file.is_file():
        return []
    with open(train_file, "rb") as handle:
        return sorted({str(orjson.loads(line)["path"]) for line in handle if line.strip()})
