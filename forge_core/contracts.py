"""The data that flows between pipeline stages and through every hook.

Every model here is a pydantic model that round-trips through JSON
(``Model.model_validate_json(m.model_dump_json()) == m``), so stages can talk
through files and the REST server can ship the same objects over HTTP.
The few in-memory handles a hook may pass (a loaded torch model) are typed
``Any``, excluded from serialisation, and always optional.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "BaseModelSpec",
    "ChatMessage",
    "CodeUnit",
    "DeployRequest",
    "DeployResult",
    "EvalSample",
    "EvaluateRequest",
    "EvaluateResult",
    "Example",
    "ExportArtifact",
    "ExportRequest",
    "ExportResult",
    "InitAdapterRequest",
    "InitAdapterResult",
    "LanguageSpec",
    "ParseRequest",
    "ParseResult",
    "Split",
    "SynthesizeRequest",
    "SynthesizeResult",
    "TrainRequest",
    "TrainResult",
    "UnitKind",
    "UnitQuality",
    "content_hash",
]


class Contract(BaseModel):
    """Base of every contract: unknown fields are errors, bytes travel as base64."""

    model_config = ConfigDict(
        extra="forbid",
        ser_json_bytes="base64",
        val_json_bytes="base64",
        arbitrary_types_allowed=True,
    )


def content_hash(data: bytes | str) -> str:
    """Return the sha256 hex digest used for every content hash in Forge."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- mining


class UnitKind(StrEnum):
    """What a code unit is."""

    FUNCTION = "function"
    METHOD = "method"
    CLASS = "class"
    TYPE = "type"


class UnitQuality(Contract):
    """Signals the validation stage uses to keep or drop a unit."""

    lines: int = Field(ge=0, description="Number of source lines of the unit.")
    has_doc: bool = Field(description="The unit has a docstring or doc comment.")
    is_test: bool = Field(default=False, description="The unit is test code.")
    looks_generated: bool = Field(default=False, description="Generated or minified code.")
    has_syntax_error: bool = Field(
        default=False, description="tree-sitter found ERROR or MISSING nodes inside the unit."
    )


class CodeUnit(Contract):
    """One whole function, method, class or type declaration mined from a repository."""

    id: str = Field(default="", description="Stable id `path::qualified_name`, set by the core.")
    path: str = Field(description="Repository-relative POSIX path of the file.")
    language: str
    kind: UnitKind
    name: str = Field(description="The bare name, e.g. `append`.")
    qualified_name: str = Field(description="e.g. `Deque.append`, `(*Server).Serve`.")
    signature: str = Field(description="The declaration line(s) up to the body.")
    docstring: str | None = Field(default=None, description="Docstring exactly as written.")
    leading_comment: str | None = Field(
        default=None, description="The comment block directly above the unit."
    )
    source: str = Field(description="The whole unit, decorators included.")
    start_line: int = Field(ge=1, description="1-based first line (decorators included).")
    end_line: int = Field(ge=1, description="1-based last line, inclusive.")
    start_byte: int = Field(ge=0)
    end_byte: int = Field(ge=0)
    references: list[str] = Field(
        default_factory=list,
        description="Identifiers the unit refers to: calls, attributes, its file's imports.",
    )
    parent: str | None = Field(default=None, description="Qualified name of the enclosing unit.")
    content_hash: str = Field(default="", description="sha256 of `source`.")
    quality: UnitQuality

    def model_post_init(self, __context: Any) -> None:
        """Fill the content hash when the parser left it empty."""
        if not self.content_hash:
            self.content_hash = content_hash(self.source)


class LanguageSpec(Contract):
    """A language a plugin can parse (registry hook ``register_languages``)."""

    name: str = Field(description="Language name used in configs and units, e.g. `python`.")
    extensions: list[str] = Field(description="File extensions with the dot, e.g. `.py`.")
    filenames: list[str] = Field(
        default_factory=list, description="Exact file names (without extension) to claim."
    )


class ParseRequest(Contract):
    """One file to turn into code units."""

    path: str = Field(description="Repository-relative POSIX path.")
    language: str
    source: bytes = Field(description="The raw file content.")


class ParseResult(Contract):
    """The units found in one file, plus file-level facts."""

    units: list[CodeUnit] = Field(default_factory=list)
    imports: list[str] = Field(default_factory=list, description="Names the file imports.")
    has_syntax_error: bool = False


# --------------------------------------------------------------------------- data


class ChatMessage(Contract):
    """One chat turn in the shape Hugging Face chat templates and TRL read."""

    role: Literal["system", "user", "assistant"]
    content: str


Split = Literal["train", "valid", "test"]


class Example(Contract):
    """One training example: RAFT question, documents in the prompt, grounded answer."""

    id: str
    messages: list[ChatMessage]
    question_type: str
    language: str
    path: str = Field(description="Path of the oracle unit's file (the split key).")
    oracle_id: str
    oracle_in_context: bool = True
    distractor_ids: list[str] = Field(default_factory=list)
    support_ids: list[str] = Field(
        default_factory=list,
        description="Other units shown in the context whose text the answer quotes "
        "(the call sites of `callers` and `usage` questions).",
    )
    question: str = Field(
        default="",
        description="The question alone, without the context documents the user turn also "
        "holds (deduplication compares question and answer); empty: the whole user turn.",
    )
    final_answer: str = Field(default="", description="The text after `<ANSWER>:`.")
    score: float | None = Field(default=None, description="Quality score from validation.")
    split: Split | None = None


class SynthesizeRequest(Contract):
    """Everything a synthesizer needs: the repository's units and its settings."""

    units: list[CodeUnit]
    settings: dict[str, Any] = Field(default_factory=dict, description="The `synth` section.")
    seed: int = 0
    cache_dir: str | None = Field(default=None, description="Where a plugin may cache work.")
    max_tokens: int | None = Field(
        default=None,
        gt=0,
        description=(
            "Most tokens an example's messages may hold (the model's training length): "
            "contexts are made to fit, e.g. with fewer distractors. None: no limit."
        ),
    )
    tokenizer_file: str | None = Field(
        default=None,
        description="The target model's `tokenizer.json`, to count tokens; None: characters / 4.",
    )


class SynthesizeResult(Contract):
    """Examples and counts of what was made or skipped."""

    examples: list[Example]
    stats: dict[str, int] = Field(default_factory=dict)


# --------------------------------------------------------------------------- training


class BaseModelSpec(Contract):
    """A named base model (registry hook ``register_base_models``)."""

    name: str
    path: str = Field(description="Local directory, or a hub id.")
    description: str = ""
    default: bool = Field(default=False, description="Use when no base model is configured.")


class InitAdapterRequest(Contract):
    """Ask an adapter plugin to make a trainable adapter on a base model."""

    method: str = Field(description="`lora`, `pissa`, `pissa_niter_16`, ...")
    base_model: str = Field(description="Path of the base model.")
    settings: dict[str, Any] = Field(default_factory=dict, description="The `train` section.")
    output_dir: str = Field(description="Where residual weights or init files may be written.")
    model: Any = Field(default=None, exclude=True, description="A loaded base model, in-process.")


class InitAdapterResult(Contract):
    """The adapter made by ``init_adapter``."""

    method: str
    residual_base: str | None = Field(
        default=None, description="Path of a residual base to train on (QPiSSA)."
    )
    initial_adapter_dir: str | None = Field(
        default=None,
        description="The adapter as initialised (PiSSA): at save time the trainer converts the "
        "trained adapter into a plain LoRA for the original base with it.",
    )
    model: Any = Field(default=None, exclude=True, description="The trainable model, in-process.")
    notes: list[str] = Field(default_factory=list)


class TrainRequest(Contract):
    """Train an adapter on the validated splits."""

    base_model: str = Field(description="Resolved path (or hub id) of the base model.")
    train_file: str
    valid_file: str | None = None
    output_dir: str = Field(description="The run's `train/` directory.")
    settings: dict[str, Any] = Field(default_factory=dict, description="The `train` section.")
    disabled_plugins: list[str] = Field(
        default_factory=list, description="`plugins.disabled`, for plugins the trainer calls."
    )


class TrainResult(Contract):
    """Where the trained adapter is and how training went."""

    adapter_dir: str
    base_model: str = Field(description="The base the adapter applies to (for merging).")
    metrics: dict[str, float] = Field(default_factory=dict)
    log_file: str | None = None
    plot_file: str | None = None


# --------------------------------------------------------------------------- evaluation


class EvalSample(Contract):
    """One evaluated question with the model's answer and the reference."""

    id: str
    question_type: str = ""
    language: str = ""
    prompt: list[ChatMessage] = Field(default_factory=list)
    context: str = Field(default="", description="The documents given in the prompt.")
    question: str = Field(
        default="",
        description="The question alone (the example's `question`); empty: not known, "
        "and the report takes it from the end of the last user turn.",
    )
    reference: str = Field(description="The reference answer.")
    prediction: str = Field(default="", description="The model's answer.")
    token_logprobs: list[float] | None = Field(
        default=None, description="Log-probs of the reference tokens, for perplexity."
    )


class EvaluateRequest(Contract):
    """Compute one named metric over samples."""

    metric: str
    samples: list[EvalSample]
    symbols: list[str] = Field(
        default_factory=list, description="The repository's symbol table, for hallucination."
    )
    settings: dict[str, Any] = Field(default_factory=dict, description="The `eval` section.")


class EvaluateResult(Contract):
    """A metric's value, per-sample scores and breakdowns."""

    metric: str
    value: float | None
    higher_is_better: bool = True
    per_sample: list[float | None] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)


# --------------------------------------------------------------------------- export/deploy


class ExportArtifact(Contract):
    """One exported file."""

    path: str
    format: str = "gguf"
    quantization: str
    size_bytes: int = 0
    fidelity: dict[str, float] = Field(default_factory=dict)
    passed: bool = True


class ExportRequest(Contract):
    """Merge an adapter into its base and write deployable files."""

    base_model: str
    adapter_dir: str | None = None
    output_dir: str
    settings: dict[str, Any] = Field(default_factory=dict, description="The `export` section.")


class ExportResult(Contract):
    """The files written by ``export``."""

    artifacts: list[ExportArtifact]
    merged_model_dir: str | None = None


class DeployRequest(Contract):
    """Serve an exported model."""

    artifact: ExportArtifact
    model_name: str
    output_dir: str = Field(description="The run's `deploy/` directory.")
    settings: dict[str, Any] = Field(default_factory=dict, description="The `deploy` section.")


class DeployResult(Contract):
    """A running, chat-able model."""

    target: str
    model_name: str
    endpoint: str = Field(description="Base URL of an OpenAI-compatible API (ends in /v1).")
    pid: int | None = None
    details: dict[str, Any] = Field(default_factory=dict)
