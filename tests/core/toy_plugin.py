"""A complete in-process Forge plugin for the core's tests.

Language ``toy`` (``.toy`` files): each line ``def NAME`` is a function unit.
It also provides a synthesizer, a trainer, a model backend, a metric, an
exporter and a deploy target, all named ``toy``, so the whole pipeline can run
without torch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from forge_core.backends import ModelBackendSpec
from forge_core.config import ForgeSettings
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
from forge_core.pipeline import Forge
from forge_core.plugins import PluginRegistry


class ToyBackend:
    """Answers with the function name it finds in the question; adapters answer better,
    except an adapter folder holding a file named ``worse`` (it answers as the base)."""

    def __init__(self, adapter: str | None) -> None:
        self.adapter = adapter if adapter and not (Path(adapter) / "worse").exists() else None

    def generate(
        self,
        conversations: Sequence[Sequence[ChatMessage]],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
    ) -> list[str]:
        answers = []
        for conversation in conversations:
            name = conversation[-1].content.split()[-1].rstrip("?")
            answers.append(f"<ANSWER>: {name}" if self.adapter else "<ANSWER>: unknown")
        return answers

    def score(self, conversations: Sequence[Sequence[ChatMessage]]) -> list[list[float]]:
        return [[-0.5 if self.adapter else -2.0] * 4 for _ in conversations]

    def close(self) -> None:
        return None


class ToyGgufBackend(ToyBackend):
    """Runs toy "GGUF" files only (as llama.cpp does): the file says which adapter is in it."""

    def __init__(self, model: str, adapter: str | None) -> None:
        if adapter is not None or not model.endswith(".gguf"):
            raise ValueError(f"toygguf runs .gguf files without adapters, not {model}, {adapter}")
        merged = Path(model).read_text().removeprefix("GGUF-toy adapter=")
        super().__init__(None if merged == "none" else merged)


class ToyPlugin:
    """Every hook, in the simplest form that exercises the core."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        #: What the toy deploy reports: a server process and where it answers.
        self.deploy_pid: int | None = None
        self.deploy_endpoint = "http://127.0.0.1:9/v1"

    @hookimpl
    def provided_names(self) -> dict[str, list[str]]:
        return {
            "synthesize": ["toy"],
            "train": ["toy"],
            "evaluate": ["toy_metric"],
            "export": ["toy"],
            "deploy": ["toy"],
        }

    @hookimpl
    def register_languages(self) -> list[LanguageSpec]:
        return [LanguageSpec(name="toy", extensions=[".toy"])]

    @hookimpl
    def register_base_models(self) -> list[BaseModelSpec]:
        return [BaseModelSpec(name="toybase", path="toy/base", default=True)]

    @hookimpl
    def register_model_backends(self) -> list[ModelBackendSpec]:
        return [
            ModelBackendSpec("toy", lambda model, adapter, options: ToyBackend(adapter)),
            ModelBackendSpec(
                "toygguf",
                lambda model, adapter, options: ToyGgufBackend(model, adapter),
                formats=("gguf",),
            ),
        ]

    @hookimpl
    def parse(self, request: ParseRequest) -> ParseResult | None:
        self.calls.append(f"parse:{request.path}")
        text = request.source.decode()
        units = []
        offset = 0
        for number, line in enumerate(text.splitlines(keepends=True), start=1):
            if line.startswith("def "):
                name = line.split()[1]
                units.append(
                    CodeUnit(
                        path=request.path,
                        language="toy",
                        kind=UnitKind.FUNCTION,
                        name=name,
                        qualified_name=name,
                        signature=line.strip(),
                        source=line.rstrip("\n"),
                        start_line=number,
                        end_line=number,
                        start_byte=offset,
                        end_byte=offset + len(line.rstrip("\n").encode()),
                        quality=UnitQuality(lines=1, has_doc=False),
                    )
                )
            offset += len(line.encode())
        return ParseResult(units=units)

    @hookimpl
    def synthesize(self, request: SynthesizeRequest) -> SynthesizeResult | None:
        self.calls.append("synthesize")
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
        self.calls.append("train")
        adapter = Path(request.output_dir) / "adapter"
        adapter.mkdir(parents=True, exist_ok=True)
        lines = Path(request.train_file).read_text().splitlines()
        # Each run's adapter differs (a real one would): it names the run it was trained in.
        record = {"examples": len(lines), "run": str(Path(request.output_dir).parent)}
        (adapter / "adapter.json").write_text(json.dumps(record))
        return TrainResult(
            adapter_dir=str(adapter), base_model=request.base_model, metrics={"loss": 0.5}
        )

    @hookimpl
    def evaluate(self, request: EvaluateRequest) -> EvaluateResult | None:
        hits = [
            1.0 if s.prediction.split(":")[-1].strip() in s.reference else 0.0
            for s in request.samples
        ]
        value = sum(hits) / len(hits) if hits else None
        return EvaluateResult(metric=request.metric, value=value, per_sample=list(hits))

    @hookimpl
    def export(self, request: ExportRequest) -> ExportResult | None:
        self.calls.append("export")
        path = Path(request.output_dir) / "model-Q8_0.gguf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"GGUF-toy adapter={request.adapter_dir or 'none'}")
        return ExportResult(
            artifacts=[ExportArtifact(path=str(path), quantization="Q8_0", size_bytes=8)]
        )

    @hookimpl
    def deploy(self, request: DeployRequest) -> DeployResult | None:
        self.calls.append("deploy")
        return DeployResult(
            target="toy",
            model_name=request.model_name,
            endpoint=self.deploy_endpoint,
            pid=self.deploy_pid,
        )


def trained_run(
    settings: ForgeSettings, registry: PluginRegistry, repo: Path, run_dir: Path
) -> Forge:
    """A run through training (mine, synth, validate, train), each stage run anew."""
    forge = Forge(settings, run_dir, registry=registry)
    for step in (lambda: forge.mine(repo), forge.synth, forge.validate, forge.train):
        assert step().status == "ran"
    return forge
