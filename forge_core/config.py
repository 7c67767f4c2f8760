"""ForgeSettings: one typed configuration, saved into every run.

Layers, lowest to highest precedence:

1. the defaults below;
2. a run's saved ``config.json`` (when a stage runs on an existing run);
3. ``forge.toml``, or ``[tool.forge]`` in ``pyproject.toml`` (from ``--config``,
   ``$FORGE_CONFIG``, else the repository, else the current directory);
4. ``FORGE_*`` environment variables, nested with ``__``
   (``FORGE_TRAIN__LEARNING_RATE=1e-4``);
5. ``--set section.key=value`` on the command line.

Every model forbids unknown keys, and each layer is checked on its own, so a
misspelt key is reported with the layer it came from and the nearest valid key.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "FORGE_"
ENV_NESTED_DELIMITER = "__"
#: Environment variables with the prefix that are not settings.
RESERVED_ENV = frozenset({"FORGE_CONFIG"})
#: Prefixes of other components' own settings (forge-server's ServerSettings, …).
RESERVED_ENV_PREFIXES = ("FORGE_SERVER_", "FORGE_TINYCODER_", "FORGE_BENCH_")


class ConfigError(ValueError):
    """A configuration problem, with a message that names the key and its source."""


class Section(BaseModel):
    """Base of every settings section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class PluginSettings(Section):
    """Which installed plugins to use."""

    disabled: list[str] = Field(default_factory=list, description="Plugin names to skip.")


class MineSettings(Section):
    """The ``mine`` stage: walking the repository and parsing files."""

    languages: list[str] = Field(
        default_factory=list, description="Languages to mine; empty means every installed one."
    )
    exclude: list[str] = Field(
        default_factory=list, description="Extra gitignore-style patterns to skip."
    )
    max_file_bytes: int = Field(default=1_000_000, gt=0, description="Larger files are skipped.")
    workers: int = Field(
        default=0,
        ge=0,
        description=(
            "Processes that parse, this one included (1: no helper processes); "
            "0: one per core (up to 8) for repositories over 2 MB, else 1."
        ),
    )
    cache: bool = Field(default=True, description="Reuse parses of unchanged files.")
    cache_dir: Path | None = Field(
        default=None, description="Parse cache folder; default <runs_dir>/.cache/parse."
    )


class TeacherSettings(Section):
    """An optional OpenAI-compatible model that writes extra questions (off by default)."""

    enabled: bool = False
    base_url: str = Field(default="http://127.0.0.1:11434/v1", description="…/v1 endpoint.")
    model: str = "qwen2.5-coder:7b"
    api_key_env: str = Field(
        default="OPENAI_API_KEY", description="Environment variable holding the key, if any."
    )
    questions_per_unit: int = Field(default=1, ge=0)
    max_retries: int = Field(default=3, ge=0)
    timeout_seconds: float = Field(default=60.0, gt=0)


class SynthSettings(Section):
    """The ``synth`` stage: making training examples."""

    synthesizer: str = Field(default="raft", description="Plugin name providing `synthesize`.")
    oracle_probability: float = Field(
        default=0.8, ge=0.0, le=1.0, description="Share of examples whose context has the oracle."
    )
    distractors: int = Field(default=3, ge=0, description="Hard-negative documents per example.")
    question_types: list[str] = Field(
        default_factory=list, description="Question types to make; empty means all."
    )
    max_document_chars: int = Field(
        default=1500, gt=0, description="Longer documents are cut to this in the context."
    )
    include_tests: bool = Field(default=False, description="Make questions about test code.")
    include_generated: bool = Field(default=False, description="Questions about generated code.")
    teacher: TeacherSettings = Field(default_factory=TeacherSettings)
    seed: int = 0


class ValidationSettings(Section):
    """The ``validate`` stage: checks, deduplication and splits."""

    split_by: Literal["file", "random"] = Field(
        default="file", description="`file`: no file in two splits; `random`: by oracle unit."
    )
    valid_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    min_tokens: int = Field(default=16, ge=0, description="Shorter examples are dropped.")
    max_tokens: int = Field(default=2048, gt=0, description="Longer examples are dropped.")
    near_duplicate_threshold: float = Field(
        default=0.85, gt=0.0, le=1.0, description="Jaccard similarity; 1.0 turns it off."
    )
    min_score: float = Field(default=0.0, ge=0.0, le=1.0)
    max_type_share: float = Field(
        default=0.4,
        gt=0.0,
        le=1.0,
        description="Cap on any one question type's share of the kept examples; with fewer "
        "than 1/share types it cannot hold and each type is cut to at most 1/types.",
    )
    seed: int = 0
    disabled_checks: list[str] = Field(default_factory=list)


class TrainSettings(Section):
    """The ``train`` stage: adapter method and optimisation."""

    trainer: str = Field(default="torch", description="Plugin name providing `train`.")
    base_model: str | None = Field(
        default=None, description="Path, hub id or registered name; empty uses the default."
    )
    method: str = Field(default="pissa", description="`lora`, `pissa`, `pissa_niter_N`.")
    quantize_4bit: bool = Field(default=False, description="QLoRA / QPiSSA (CUDA only).")
    rank: int = Field(default=16, gt=0)
    alpha: int = Field(default=16, gt=0)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"
    learning_rate: float = Field(default=2e-4, gt=0.0)
    epochs: float = Field(default=1.0, gt=0.0)
    max_steps: int | None = Field(default=None, gt=0)
    batch_size: int = Field(default=8, gt=0)
    gradient_accumulation: int = Field(default=1, gt=0)
    max_seq_len: int = Field(default=1024, gt=0)
    warmup_ratio: float = Field(default=0.05, ge=0.0, lt=1.0)
    weight_decay: float = Field(default=0.0, ge=0.0)
    gradient_checkpointing: bool | None = Field(
        default=None,
        description="None decides by memory: on when the memory plan's estimate without it "
        "does not fit the device (CUDA: free memory; CPU/MPS: system RAM).",
    )
    packing: bool = True
    compile: bool = Field(default=False, description="torch.compile the decoder (CUDA).")
    save_every: int = Field(default=50, gt=0, description="Checkpoint every N optimizer steps.")
    eval_every: int = Field(default=50, gt=0)
    valid_max_examples: int | None = Field(
        default=256,
        gt=0,
        description="Validation examples behind the periodic validation loss (and early "
        "stopping): a fixed random sample of the valid split; empty: all of them.",
    )
    early_stopping_patience: int | None = Field(default=None, gt=0)
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    seed: int = 0


class GateSettings(Section):
    """The quality gate between evaluation and deployment."""

    enabled: bool = True
    reference: Literal["base", "deployed"] = Field(
        default="base",
        description="The model a candidate must not be worse than: `base`, or `deployed` (the "
        "model of the last deploy from runs_dir, recorded in runs_dir/deployed.json; the base "
        "while none is).",
    )
    max_regression: float = Field(
        default=0.02,
        ge=0.0,
        description="Largest allowed regression of any metric: relative above 1, absolute for "
        "rates in [0, 1].",
    )
    max_hallucination_rate: float = Field(default=0.25, ge=0.0, le=1.0)


class EvalSettings(Section):
    """The ``eval`` stage: backends, metrics and the gate."""

    backend: str = Field(default="torch", description="Model backend name.")
    metrics: list[str] = Field(
        default_factory=lambda: [
            "perplexity",
            "exact_match",
            "codebleu",
            "hallucination",
            "quote_fidelity",
        ]
    )
    max_samples: int | None = Field(default=None, gt=0)
    max_new_tokens: int = Field(default=256, gt=0)
    codebleu_weights: list[float] = Field(
        default_factory=lambda: [0.25, 0.25, 0.25, 0.25],
        description="CodeBLEU weights: n-gram, weighted n-gram, AST, data flow.",
    )
    gate: GateSettings = Field(default_factory=GateSettings)


class ExportSettings(Section):
    """The ``export`` stage."""

    exporter: str = Field(default="gguf", description="Plugin name providing `export`.")
    quantizations: list[str] = Field(default_factory=lambda: ["Q8_0"])
    fidelity_positions: int = Field(default=256, gt=0, description="Logit positions compared.")
    fidelity_file: str | None = Field(
        default=None, description="Held-out text for the fidelity check; default the test split."
    )
    min_top1: dict[str, float] = Field(
        default_factory=lambda: {"F16": 0.99, "Q8_0": 0.98},
        description="Top-1 agreement gates per quantisation (others are reported only).",
    )
    pre_tokenizer: str | None = Field(default=None, description="Override the GGUF pre-tokenizer.")
    threads: int | None = Field(default=None, gt=0, description="llama.cpp threads.")
    model_name: str | None = Field(default=None, description="general.name in the GGUF.")


class DeploySettings(Section):
    """The ``deploy`` stage."""

    target: str = Field(default="llamacpp", description="Plugin name providing `deploy`.")
    model_name: str | None = Field(default=None, description="Defaults to forge-<run id>.")
    host: str = "127.0.0.1"
    port: int = Field(default=8088, gt=0, lt=65536)
    force: bool = Field(default=False, description="Deploy even when the quality gate failed.")
    n_ctx: int | None = Field(
        default=None, gt=0, description="Context window; default: the model's, capped at 4096."
    )
    startup_timeout: float = Field(default=120.0, gt=0, description="Seconds to wait for health.")
    chat_format: str | None = Field(
        default=None, description="llama.cpp chat format, only for GGUFs without a template."
    )
    ollama_host: str | None = Field(
        default=None, description="Ollama URL; default $OLLAMA_HOST, else 127.0.0.1:11434."
    )
    ollama_template: str | None = Field(
        default=None, description="A Go template to use instead of translating the Jinja one."
    )
    system_prompt: str | None = Field(
        default=None, description="System prompt; default: the one the model was trained with."
    )
    verify: bool = Field(default=True, description="Send one chat request after deploying.")


class ForgeSettings(BaseSettings):
    """The whole Forge configuration; what lands in every run's ``config.json``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="forbid",
        validate_assignment=True,
    )

    runs_dir: Path = Field(default=Path("runs"), description="Where new runs are created.")
    plugins: PluginSettings = Field(default_factory=PluginSettings)
    mine: MineSettings = Field(default_factory=MineSettings)
    synth: SynthSettings = Field(default_factory=SynthSettings)
    validation: ValidationSettings = Field(default_factory=ValidationSettings)
    train: TrainSettings = Field(default_factory=TrainSettings)
    eval: EvalSettings = Field(default_factory=EvalSettings)
    export: ExportSettings = Field(default_factory=ExportSettings)
    deploy: DeploySettings = Field(default_factory=DeploySettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Constructor arguments win over ``FORGE_*``; :func:`load_settings` layers files."""
        return (init_settings, env_settings)

    def section(self, name: str) -> dict[str, Any]:
        """Return one section as plain JSON data (what a stage hashes and records)."""
        return dict(self.model_dump(mode="json")[name])


# --------------------------------------------------------------------------- layers


def find_config_file(repo: Path | None, explicit: Path | None = None) -> Path | None:
    """Pick the config file: explicit, ``$FORGE_CONFIG``, the repo's, else the cwd's."""
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"config file {explicit} does not exist")
        return explicit
    from_env = os.environ.get("FORGE_CONFIG")
    if from_env:
        path = Path(from_env)
        if not path.is_file():
            raise ConfigError(f"FORGE_CONFIG points to {path}, which does not exist")
        return path
    for folder in ([repo] if repo is not None else []) + [Path.cwd()]:
        if (folder / "forge.toml").is_file():
            return folder / "forge.toml"
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and "forge" in _read_toml(pyproject).get("tool", {}):
            return pyproject
    return None


def read_config_file(path: Path) -> dict[str, Any]:
    """Read ``forge.toml`` or the ``[tool.forge]`` table of a ``pyproject.toml``."""
    data = _read_toml(path)
    if path.name == "pyproject.toml":
        table = data.get("tool", {}).get("forge", {})
        return dict(table) if isinstance(table, dict) else {}
    return data


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc


def parse_overrides(assignments: Iterable[str]) -> dict[str, Any]:
    """Turn ``["train.rank=8", "eval.metrics=['exact_match']"]`` into nested data.

    Values are read as TOML values (numbers, booleans, strings, arrays); a value
    that is not valid TOML is taken as a plain string.
    """
    data: dict[str, Any] = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected section.key=value")
        try:
            value: Any = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is set twice with different shapes")
        node[parts[-1]] = value
    return data


def env_layer(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read the ``FORGE_*`` variables through pydantic-settings, after checking their names."""
    environ = os.environ if environ is None else environ
    for name in environ:
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in RESERVED_ENV:
            continue
        if upper.startswith(RESERVED_ENV_PREFIXES):
            continue
        path = upper[len(ENV_PREFIX) :].lower().split(ENV_NESTED_DELIMITER)
        _check_path(path, ForgeSettings, source=f"environment variable {name}")
    source = EnvSettingsSource(ForgeSettings, case_sensitive=False)
    if environ is not os.environ:
        source.env_vars = {k.lower(): v for k, v in environ.items()}
    return dict(source())


def check_keys(data: Mapping[str, Any], source: str) -> None:
    """Raise :class:`ConfigError` for the first key in ``data`` that is not a setting."""

    def walk(node: Mapping[str, Any], prefix: list[str]) -> None:
        for key, value in node.items():
            field_model = _check_path([*prefix, key], ForgeSettings, source=source)
            if isinstance(value, Mapping) and field_model is not None:
                walk(value, [*prefix, key])

    walk(data, [])


def _check_path(path: list[str], root: type[BaseModel], *, source: str) -> type[BaseModel] | None:
    """Follow ``path`` through the models; return the model at its end, if it is one."""
    model: type[BaseModel] | None = root
    for depth, key in enumerate(path):
        if model is None:
            break
        fields = model.model_fields
        if key not in fields:
            where = ".".join(path[: depth + 1])
            hint = difflib.get_close_matches(key, list(fields), n=1)
            suggestion = f" (did you mean {'.'.join([*path[:depth], hint[0]])!r}?)" if hint else ""
            valid = ", ".join(sorted(fields))
            raise ConfigError(
                f"{source}: unknown setting {where!r}{suggestion}; valid keys here: {valid}"
            )
        annotation = fields[key].annotation
        model = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
    return model


def deep_merge(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Merge nested mappings; later layers win key by key."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
                merged[key] = deep_merge(merged[key], value)
            elif isinstance(value, Mapping):
                merged[key] = deep_merge(value)
            else:
                merged[key] = value
    return merged


def load_settings(
    *,
    repo: Path | None = None,
    config_file: Path | None = None,
    overrides: Iterable[str] = (),
    base: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> ForgeSettings:
    """Resolve the configuration from every layer (see the module docstring)."""
    layers: list[tuple[str, Mapping[str, Any]]] = []
    if base:
        layers.append(("the run's config.json", base))
    path = find_config_file(repo, config_file)
    if path is not None:
        layers.append((str(path), read_config_file(path)))
    layers.append(("the environment", env_layer(environ)))
    layers.append(("--set", parse_overrides(overrides)))
    for source, data in layers:
        check_keys(data, source)
    merged = deep_merge(*(data for _, data in layers))
    try:
        return ForgeSettings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from exc


def format_validation_error(exc: ValidationError) -> str:
    """One line per problem: ``train.rank: Input should be greater than 0 (got 0)``."""
    lines = ["invalid configuration:"]
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(root)"
        lines.append(f"  {where}: {error['msg']} (got {error.get('input')!r})")
    return "\n".join(lines)
