"""The REST API's request and response bodies (what the OpenAPI schema documents)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from forge_server.jobqueue import JobState

Method = Literal["pissa", "lora", "qlora"]


class Strict(BaseModel):
    """Request bodies: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid")


class FineTuneRequest(Strict):
    """Fine-tune a model on a repository, then evaluate, export and deploy it."""

    repository: str = Field(
        min_length=1,
        max_length=4096,
        description="The repository folder: absolute, or relative to an allowed root.",
    )
    base_model: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="Registered name, hub id, or a local folder inside the allowed roots; "
        "empty uses the server's default.",
    )
    method: Method = Field(
        default="pissa", description="`pissa` (PiSSA), `lora`, or `qlora` (LoRA on 4-bit, CUDA)."
    )
    model_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$",
        description="Name of the deployed model (default forge-<run id>).",
    )
    hyperparameters: dict[str, Any] = Field(
        default_factory=dict,
        description="Keys of the `train` settings section: rank, alpha, learning_rate, "
        "epochs, max_steps, batch_size, ...",
    )
    settings: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Overrides of other settings sections: mine, synth, validation, eval, "
        "export, deploy.",
    )


class RetrainRequest(Strict):
    """Re-run a repository's last successful configuration on its current state."""

    repository: str = Field(
        min_length=1,
        max_length=4096,
        description="The repository of an earlier successful fine-tune.",
    )


class JobAccepted(BaseModel):
    """A job was queued (and committed)."""

    job_id: str
    state: JobState
    status_url: str
    logs_url: str
    created: bool = Field(description="False when an Idempotency-Key matched an earlier job.")


class TaskProgress(BaseModel):
    """A countable piece of the current stage's work."""

    name: str
    done: int
    total: int | None = None


class TrainProgress(BaseModel):
    """Where training is."""

    step: int
    total_steps: int | None = None
    loss: float | None = None


class ProgressView(BaseModel):
    """How far a job is."""

    percent: float = Field(ge=0, le=100)
    stage: str | None = Field(description="The running stage (null unless running).")
    stages_done: list[str]
    task: TaskProgress | None = None
    train: TrainProgress | None = None


class WorkerView(BaseModel):
    """The process running the job's current attempt."""

    pid: int | None
    heartbeat_at: datetime | None


class JobStatus(BaseModel):
    """A job's state, progress, metrics so far and, if it failed, why."""

    id: str
    kind: Literal["fine-tune", "retrain"]
    state: JobState
    repository: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    stage: str | None = Field(description="Current (running) or last stage.")
    progress: ProgressView
    metrics: dict[str, dict[str, Any]] = Field(description="Metrics of each finished stage.")
    error: str | None = Field(description="Why the job failed or was cancelled.")
    attempts: int
    retry_reasons: list[str] = Field(description="Why earlier attempts' workers died.")
    worker: WorkerView | None
    model: str | None = Field(description="The deployed model's name, once succeeded.")
    parent_job: str | None = Field(description="For a retrain: the job whose settings it reused.")
    run_dir: str


class JobList(BaseModel):
    """A page of jobs, newest first."""

    jobs: list[JobStatus]
    total: int
    limit: int
    offset: int


class Health(BaseModel):
    """The server is up and its queue is readable."""

    status: Literal["ok"]


class ErrorDetail(BaseModel):
    """One problem with a request."""

    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """An error of the Forge endpoints."""

    detail: str | list[ErrorDetail] | list[dict[str, Any]]


class OpenAIErrorBody(BaseModel):
    """OpenAI's error object."""

    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIError(BaseModel):
    """An error of the OpenAI-compatible endpoints."""

    error: OpenAIErrorBody


# --------------------------------------------------------------------------- OpenAI shapes


class ChatMessageIn(BaseModel):
    """One message of a chat request."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat completion request; fields not listed are passed to the model server."""

    model_config = ConfigDict(extra="allow")

    model: str | None = Field(
        default=None,
        max_length=256,
        description="A deployed model's name or job id; empty or `default`: the newest.",
    )
    messages: list[ChatMessageIn] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    stream: bool | None = False
    stream_options: dict[str, Any] | None = None
    n: int | None = Field(default=None, ge=1, le=1)
    seed: int | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    user: str | None = None


class ChatChoice(BaseModel):
    """One answer."""

    model_config = ConfigDict(extra="allow")

    index: int
    message: dict[str, Any]
    finish_reason: str | None = None


class Usage(BaseModel):
    """Token counts."""

    model_config = ConfigDict(extra="allow")

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    """OpenAI's chat completion response (as the model server sent it)."""

    model_config = ConfigDict(extra="allow")

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    """A deployed model."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "forge"
    job_id: str
    repository: str


class ModelList(BaseModel):
    """The deployed models, newest first."""

    object: Literal["list"] = "list"
    data: list[ModelCard]
