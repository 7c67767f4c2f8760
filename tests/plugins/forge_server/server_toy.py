"""A toy Forge plugin for the server tests: the whole pipeline in milliseconds, no torch.

A plain module with a unique name: the tests import it directly, and the server's
workers load it through ``FORGE_SERVER_PLUGIN_MODULES=server_toy:ServerToyPlugin``
(with this folder on ``PYTHONPATH``).

* language ``toy``: ``.toy``, ``.py``, ``.go``, ``.js`` files; every line starting
  with ``def``/``func``/``function``/``class`` is a unit (so the sample repository works);
* trainer ``toy``: ``train.max_steps`` steps (default 3) of ``$SERVER_TOY_STEP_SECONDS``
  each, a ``log.jsonl`` line per step, a checkpoint every ``train.save_every`` steps,
  resumed from the newest checkpoint; the base model ``toycrash`` SIGKILLs the worker;
* backend ``toy``: the base model and a good adapter answer right; an adapter trained
  on a unit called ``regress_marker`` answers wrong (so the quality gate fails);
* deploy ``toy``: the endpoint is ``http://{deploy.host}:{deploy.port}/v1`` (tests
  point it at a fake OpenAI-compatible upstream).
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Sequence
from pathlib import Path

from forge_core.backends import ModelBackendSpec
from forge_core.contracts import (
    BaseModelSpec,
    ChatMessage,
    CodeUnit,
    DeployRequest,
    DeployResult,
    EvaluateRequest,
    EvaluateResult,
    Example,
    ExportArtifact,
    ExportRequest,
    ExportResult,
    LanguageSpec,
    ParseRequest,
    ParseResult,
    SynthesizeRequest,
    SynthesizeResult,
    TrainRequest,
    TrainResult,
    UnitKind,
    UnitQuality,
)
from forge_core.hookspecs import hookimpl

KEYWORDS = ("def ", "func ", "function ", "class ")
#: The declared name, after a Go method's receiver.
DECLARED = re.compile(r"(?:\([^)]*\)\s*)?([A-Za-z_]\w*)")
BAD_UNIT = "regress_marker"


class ToyBackend:
    """Answers with the name the question asks about; a bad adapter answers wrong."""

    def __init__(self, adapter: str | None) -> None:
        self.bad = bool(adapter) and json.loads((Path(adapter) / "adapter.json").read_text()).get(
            "bad", False
        )
        self.adapter = adapter

    def generate(
        self,
        conversations: Sequence[Sequence[ChatMessage]],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
    ) -> list[str]:
        """The name at the end of the question, or ``unknown`` for a bad adapter."""
        answers = []
        for conversation in conversations:
            name = conversation[-1].content.split()[-1].rstrip("?")
            answers.append("<ANSWER>: unknown" if self.bad else f"<ANSWER>: {name}")
        return answers

    def score(self, conversations: Sequence[Sequence[ChatMessage]]) -> list[list[float]]:
        """Flat log-probs."""
        return [[-0.5 if self.adapter else -2.0] * 4 for _ in conversations]

    def close(self) -> None:
        """Nothing to release."""


def unit_name(line: str) -> str | None:
    """The unit a line declares, if any."""
    for keyword in KEYWORDS:
        if line.startswith(keyword):
            found = DECLARED.match(line[len(keyword) :].strip())
            return found.group(1) if found else None
    return None


class ServerToyPlugin:
    """Every pipeline hook, as small as possible."""

    @hookimpl
    def provided_names(self) -> dict[str, list[str]]:
        """Everything is called ``toy``."""
        return {
            "synthesize": ["toy"],
            "train": ["toy"],
            "evaluate": ["toy_metric"],
            "export": ["toy"],
            "deploy": ["toy"],
        }

    @hookimpl
    def register_languages(self) -> list[LanguageSpec]:
        """The toy language."""
        return [LanguageSpec(name="toy", extensions=[".toy", ".py", ".go", ".js"])]

    @hookimpl
    def register_base_models(self) -> list[BaseModelSpec]:
        """A default base model and one whose training crashes the worker."""
        return [
            BaseModelSpec(name="toybase", path="toy/base", default=True),
            BaseModelSpec(name="toycrash", path="toy/crash"),
        ]

    @hookimpl
    def register_model_backends(self) -> list[ModelBackendSpec]:
        """The toy backend."""
        return [ModelBackendSpec("toy", lambda model, adapter, options: ToyBackend(adapter))]

    @hookimpl
    def parse(self, request: ParseRequest) -> ParseResult | None:
        """One unit per declaring line."""
        units = []
        offset = 0
        for number, line in enumerate(request.source.decode().splitlines(keepends=True), 1):
            name = unit_name(line)
            if name:
                text = line.rstrip("\n")
                units.append(
                    CodeUnit(
                        path=request.path,
                        language="toy",
                        kind=UnitKind.FUNCTION,
                        name=name,
                        qualified_name=name,
                        signature=text,
                        source=text,
                        start_line=number,
                        end_line=number,
                        start_byte=offset,
                        end_byte=offset + len(text.encode()),
                        quality=UnitQuality(lines=1, has_doc=False),
                    )
                )
            offset += len(line.encode())
        return ParseResult(units=units)

    @hookimpl
    def synthesize(self, request: SynthesizeRequest) -> SynthesizeResult | None:
        """One question per unit."""
        examples = [
            Example(
                id=f"ex-{unit.id}",
                messages=[
                    ChatMessage(role="user", content=f"Which function is {unit.name}?"),
                    ChatMessage(role="assistant", content=f"<ANSWER>: {unit.name}"),
                ],
                question_type="name",
                language=unit.language,
                path=unit.path,
                oracle_id=unit.id,
                final_answer=unit.name,
            )
            for unit in request.units
        ]
        return SynthesizeResult(examples=examples, stats={"units": len(request.units)})

    @hookimpl
    def train(self, request: TrainRequest) -> TrainResult | None:
        """Count steps slowly, checkpointing and resuming like a real trainer."""
        if request.base_model == "toy/crash":
            os.kill(os.getpid(), signal.SIGKILL)
        output = Path(request.output_dir)
        checkpoints = output / "checkpoints"
        checkpoints.mkdir(parents=True, exist_ok=True)
        total = request.settings.get("max_steps") or 3
        every = request.settings.get("save_every") or 1
        done = [int(p.name.split("-")[1]) for p in checkpoints.glob("step-*")]
        start = max(done, default=0)
        log = output / "log.jsonl"
        kept = [line for line in (log.read_text().splitlines() if log.exists() else [])]
        log.write_text("".join(line + "\n" for line in kept[:start]))
        pause = float(os.environ.get("SERVER_TOY_STEP_SECONDS", "0"))
        for step in range(start + 1, total + 1):
            time.sleep(pause)
            with open(log, "a") as handle:
                handle.write(json.dumps({"step": step, "loss": round(1.0 / step, 4)}) + "\n")
            if step % every == 0 and step < total:
                (checkpoints / f"step-{step}").mkdir(exist_ok=True)
        text = Path(request.train_file).read_text()
        adapter = output / "adapter"
        adapter.mkdir(exist_ok=True)
        info = {"examples": len(text.splitlines()), "bad": BAD_UNIT in text}
        (adapter / "adapter.json").write_text(json.dumps(info))
        metrics = {"steps": float(total), "final_loss": round(1.0 / total, 4)}
        if start:
            metrics["resumed_from_step"] = float(start)
        return TrainResult(
            adapter_dir=str(adapter),
            base_model=request.base_model,
            metrics=metrics,
            log_file=str(log),
        )

    @hookimpl
    def evaluate(self, request: EvaluateRequest) -> EvaluateResult | None:
        """Share of answers naming the reference."""
        hits = [
            1.0 if s.prediction.split(":")[-1].strip() in s.reference else 0.0
            for s in request.samples
        ]
        value = sum(hits) / len(hits) if hits else None
        return EvaluateResult(metric=request.metric, value=value, per_sample=list(hits))

    @hookimpl
    def export(self, request: ExportRequest) -> ExportResult | None:
        """A fake GGUF file."""
        path = Path(request.output_dir) / "model-Q8_0.gguf"
        path.write_bytes(b"GGUF-toy")
        return ExportResult(
            artifacts=[ExportArtifact(path=str(path), quantization="Q8_0", size_bytes=8)]
        )

    @hookimpl
    def deploy(self, request: DeployRequest) -> DeployResult | None:
        """Point at the OpenAI-compatible server at deploy.host:deploy.port."""
        host, port = request.settings["host"], request.settings["port"]
        return DeployResult(
            target="toy", model_name=request.model_name, endpoint=f"http://{host}:{port}/v1"
        )


#: Jobs' default settings selecting the toy plugin (the server's ForgeSettings in tests).
TOY_SETTINGS = {
    "synth": {"synthesizer": "toy"},
    "validation": {
        "min_tokens": 1,
        "split_by": "random",
        "valid_fraction": 0.2,
        "test_fraction": 0.3,
        "near_duplicate_threshold": 1.0,
        "max_type_share": 1.0,
    },
    "train": {"trainer": "toy", "save_every": 1},
    "eval": {"backend": "toy", "metrics": ["toy_metric"]},
    "export": {"exporter": "toy"},
    "deploy": {"target": "toy"},
}
