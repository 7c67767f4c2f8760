"""A fine-tune request → the job's fully resolved ForgeSettings.

The server's ForgeSettings are the defaults; the request's ``base_model``,
``method``, ``model_name``, ``hyperparameters`` (the ``train`` section) and
``settings`` (other sections) are laid over them and validated by ForgeSettings
itself, so an unknown key or a bad value is a 422 naming the field. A request may
not name a file or a host of the server's: nothing it sets reads a file outside the
repository, writes outside the job's run directory, reaches a secret, or sends the
model (or, through the chat proxy, other users' chats) anywhere the operator did not
choose. So ``runs_dir``, ``plugins``, ``mine.cache_dir``, ``synth.teacher`` (its URL and
key), ``export.fidelity_file`` (a file the export reads), ``deploy.target`` (which
deployment the model goes to), ``deploy.host`` (which interface the model server
listens on), ``deploy.ollama_host`` (the Ollama server it is pushed to, and the chat
endpoint recorded) and the trainer belong to the operator.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from forge_core.config import ForgeSettings, TrainSettings, deep_merge
from forge_server.schemas import FineTuneRequest

#: Sections a request's ``settings`` may override.
REQUEST_SECTIONS = ("mine", "synth", "validation", "eval", "export", "deploy")
#: Keys the operator alone sets (server paths and hosts, secrets, where models go, the trainer).
OPERATOR_KEYS = {
    "mine": {"cache_dir"},
    "synth": {"teacher"},
    "export": {"fidelity_file"},
    "deploy": {"target", "host", "ollama_host"},
    "train": {"trainer", "base_model", "method", "quantize_4bit"},
}
#: Operator keys a request still chooses, through its top-level fields.
REQUEST_TRAIN_KEYS = ("base_model", "method", "quantize_4bit")
#: How each API method maps onto the train section.
METHODS: dict[str, dict[str, Any]] = {
    "pissa": {"method": "pissa", "quantize_4bit": False},
    "lora": {"method": "lora", "quantize_4bit": False},
    "qlora": {"method": "lora", "quantize_4bit": True},
}


class JobSpecError(ValueError):
    """The request's settings are invalid; ``details`` are FastAPI-style error items."""

    def __init__(self, details: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, d['loc']))}: {d['msg']}" for d in details))
        self.details = details


def _problem(loc: list[str | int], msg: str, kind: str) -> dict[str, Any]:
    return {"loc": ["body", *loc], "msg": msg, "type": kind}


def _unknown(loc: list[str | int], key: str, valid: list[str]) -> dict[str, Any]:
    hint = difflib.get_close_matches(key, valid, n=1)
    suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
    return _problem(
        [*loc, key],
        f"unknown setting {key!r}{suggestion}; valid keys: {', '.join(sorted(valid))}",
        "extra_forbidden",
    )


def request_overlay(request: FineTuneRequest) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The settings the request sets, and problems with its keys."""
    problems: list[dict[str, Any]] = []
    train_keys = [k for k in TrainSettings.model_fields if k not in OPERATOR_KEYS["train"]]
    for key in request.hyperparameters:
        if key not in train_keys:
            problems.append(_unknown(["hyperparameters"], key, train_keys))
    train = {k: v for k, v in request.hyperparameters.items() if k in train_keys}
    train.update(METHODS[request.method])
    if request.base_model is not None:
        train["base_model"] = request.base_model
    overlay: dict[str, Any] = {"train": train}
    for section, values in request.settings.items():
        if section not in REQUEST_SECTIONS:
            hint = "; training keys go in `hyperparameters`" if section == "train" else ""
            problems.append(
                _problem(
                    ["settings", section],
                    f"section {section!r} cannot be set by a request{hint}; "
                    f"settable sections: {', '.join(REQUEST_SECTIONS)}",
                    "extra_forbidden",
                )
            )
            continue
        model = ForgeSettings.model_fields[section].annotation
        fields = list(getattr(model, "model_fields", {}))
        allowed = [k for k in fields if k not in OPERATOR_KEYS.get(section, set())]
        for key in values:
            if key in OPERATOR_KEYS.get(section, set()):
                problems.append(
                    _problem(
                        ["settings", section, key],
                        f"{section}.{key} is set by the server operator, not by requests",
                        "forbidden",
                    )
                )
            elif key not in allowed:
                problems.append(_unknown(["settings", section], key, allowed))
        overlay[section] = {k: v for k, v in values.items() if k in allowed}
    if request.model_name is not None:
        overlay.setdefault("deploy", {})["model_name"] = request.model_name
    return overlay, problems


def _request_location(loc: tuple[str | int, ...]) -> list[str | int]:
    """Where a ForgeSettings error lies in the request body."""
    if loc and loc[0] == "train":
        if len(loc) > 1 and loc[1] in REQUEST_TRAIN_KEYS:
            return ["body", "base_model" if loc[1] == "base_model" else "method"]
        return ["body", "hyperparameters", *loc[1:]]
    return ["body", "settings", *loc]


def resolve_settings(
    base: ForgeSettings, request: FineTuneRequest, runs_dir: Path
) -> ForgeSettings:
    """The job's configuration: the server's defaults with the request laid over."""
    overlay, problems = request_overlay(request)
    if problems:
        raise JobSpecError(problems)
    data = deep_merge(base.model_dump(mode="json"), overlay)
    return pin_operator_settings(data, runs_dir)


def pin_operator_settings(data: dict[str, Any], runs_dir: Path) -> ForgeSettings:
    """Validate a complete configuration with the server's runs directory.

    Every key is given, so no ``FORGE_*`` variable of the server's environment
    can change what was asked for.
    """
    data = deep_merge(data, {"runs_dir": str(runs_dir.resolve())})
    try:
        return ForgeSettings.model_validate(data)
    except ValidationError as exc:
        details = [
            {
                "loc": _request_location(tuple(error["loc"])),
                "msg": error["msg"],
                "type": error["type"],
            }
            for error in exc.errors()
        ]
        raise JobSpecError(details) from exc


def operator_values(base: ForgeSettings) -> dict[str, Any]:
    """The operator keys' values in the server's settings (what every job gets)."""
    data = base.model_dump(mode="json")
    return {
        section: {
            key: data[section][key]
            for key in keys
            if not (section == "train" and key in REQUEST_TRAIN_KEYS)
        }
        for section, keys in OPERATOR_KEYS.items()
    }


def retrain_settings(config: dict[str, Any], base: ForgeSettings, runs_dir: Path) -> ForgeSettings:
    """A retrain's configuration: the earlier job's, with the quality gate enforced.

    The operator keys are the server's current ones, not the earlier job's: a job
    accepted under older rules cannot pass a host or a file on to its retrains.
    """
    gated = deep_merge(
        config,
        operator_values(base),
        {"eval": {"gate": {"enabled": True}}, "deploy": {"force": False}},
    )
    return pin_operator_settings(gated, runs_dir)
