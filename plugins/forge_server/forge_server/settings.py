"""ServerSettings: how ``forge serve`` runs (the core's ForgeSettings has no server section).

Read from constructor arguments (the ``forge serve`` options), then ``FORGE_SERVER_*``
environment variables. Lists may be given as JSON (``'["a","b"]'``) or comma-separated
(``FORGE_SERVER_API_KEYS=key1,key2``). API keys are :class:`SecretStr`: they never appear
in a repr, a log line or a job's configuration.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "FORGE_SERVER_"


def split_list(value: Any) -> Any:
    """Accept a JSON list or a comma-separated string for a list setting."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [item.strip() for item in text.split(",") if item.strip()]
    return value


class ServerSettings(BaseSettings):
    """Settings of the REST server and its job queue."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")

    host: str = Field(default="127.0.0.1", description="Bind address (loopback by default).")
    port: int = Field(default=8000, ge=0, lt=65536, description="Bind port (0: any free port).")
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Bearer keys; when any is set, every endpoint but /healthz needs one.",
    )
    api_key_file: Path | None = Field(
        default=None, description="A file with more API keys, one per line (# comments)."
    )
    allowed_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Folders a fine-tune repository must be inside (symlinks resolved).",
    )
    runs_dir: Path = Field(
        default=Path("runs/server"), description="Job run directories and the queue database."
    )
    database: Path | None = Field(
        default=None, description="The SQLite queue file; default <runs_dir>/jobs.sqlite3."
    )
    max_concurrent_jobs: int = Field(default=1, ge=1, description="Jobs running at once.")
    max_retries: int = Field(
        default=2, ge=0, description="Restarts of a job whose worker died, before it fails."
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, gt=0, description="Larger request bodies are refused with 413."
    )
    heartbeat_seconds: float = Field(
        default=2.0, gt=0, description="How often a worker reports; 5 missed beats end its lease."
    )
    cancel_grace_seconds: float = Field(
        default=5.0, ge=0, description="Time between SIGTERM and SIGKILL on cancellation."
    )
    poll_seconds: float = Field(
        default=0.5, gt=0, description="How often the supervisor looks at the queue."
    )
    upstream_timeout_seconds: float = Field(
        default=600.0, gt=0, description="Timeout of a chat request to the deployed model."
    )
    discover_plugins: bool = Field(
        default=True, description="Workers load installed plugins through entry points."
    )
    plugin_modules: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Embedding/test hook: `module` or `module:attribute` plugins that every "
        "worker registers in-process, besides (or instead of) the installed ones.",
    )

    @field_validator("api_keys", "allowed_roots", "plugin_modules", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return split_list(value)

    @field_validator("api_keys")
    @classmethod
    def _no_blank_keys(cls, value: list[SecretStr]) -> list[SecretStr]:
        for key in value:
            if len(key.get_secret_value().strip()) < 8:
                raise ValueError("every API key must have at least 8 non-blank characters")
        return value

    @property
    def database_path(self) -> Path:
        """Where the queue lives."""
        return self.database or self.runs_dir / "jobs.sqlite3"

    @property
    def lease_seconds(self) -> float:
        """A running job whose worker has not reported for this long is presumed dead."""
        return 5 * self.heartbeat_seconds

    def all_api_keys(self) -> list[bytes]:
        """Every configured key (settings and key file), as bytes for comparison."""
        keys = [key.get_secret_value().strip() for key in self.api_keys]
        if self.api_key_file is not None:
            for line in self.api_key_file.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    keys.append(line)
        return [key.encode("utf-8") for key in keys]

    def resolved_roots(self) -> list[Path]:
        """The allowed roots with symlinks resolved (missing ones dropped)."""
        return [root.expanduser().resolve() for root in self.allowed_roots if root.exists()]


def check_environment(environ: dict[str, str] | None = None) -> None:
    """Raise ValueError for a ``FORGE_SERVER_*`` variable that is no setting (a typo).

    pydantic-settings ignores unknown variables; a misspelt one must not be a silent default.
    """
    source = os.environ if environ is None else environ
    fields = list(ServerSettings.model_fields)
    for name in source:
        if not name.upper().startswith(ENV_PREFIX):
            continue
        key = name.upper()[len(ENV_PREFIX) :].lower()
        if key not in fields:
            hint = difflib.get_close_matches(key, fields, n=1)
            suggestion = f" (did you mean {ENV_PREFIX + hint[0].upper()}?)" if hint else ""
            valid = ", ".join(ENV_PREFIX + field.upper() for field in fields)
            raise ValueError(
                f"environment variable {name}: unknown server setting{suggestion}; valid: {valid}"
            )


def worker_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a worker starts with: no ``FORGE_*`` settings, no server secrets.

    The job's configuration was resolved and saved when it was accepted; ``FORGE_*``
    variables of the server's environment must not change it behind the user's back,
    and the API keys have no business in a training process.
    """
    from forge_core.config import ForgeSettings

    source = dict(os.environ if environ is None else environ)
    sections = {name.upper() for name in ForgeSettings.model_fields}
    kept = {}
    for name, value in source.items():
        upper = name.upper()
        if upper.startswith(ENV_PREFIX) or upper == "FORGE_CONFIG":
            continue
        if upper.startswith("FORGE_") and upper[6:].split("__")[0] in sections:
            continue
        kept[name] = value
    return kept


def forge_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment without ``FORGE_SERVER_*``, for the core's ``load_settings``.

    The core checks every ``FORGE_*`` variable against ForgeSettings and would reject
    the server's own variables as unknown settings.
    """
    source = dict(os.environ if environ is None else environ)
    return {k: v for k, v in source.items() if not k.upper().startswith(ENV_PREFIX)}
