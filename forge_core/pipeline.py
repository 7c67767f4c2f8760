"""The pipeline: one short method per stage, and ``run_all``.

Embed Forge without the CLI::

    from forge_core import Forge
    forge = Forge(run_dir="runs/demo")
    forge.run_all("path/to/repo")

Each stage reads the previous stage's files from the run directory, calls the
plugin selected by name in the configuration, writes its outputs atomically
and its manifest last. A stage whose inputs and config section are unchanged
is skipped unless ``force`` is set.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from forge_core.config import ForgeSettings
from forge_core.contracts import (
    CodeUnit,
    DeployRequest,
    DeployResult,
    Example,
    ExportArtifact,
    ExportRequest,
    ExportResult,
    LanguageSpec,
    SynthesizeRequest,
    SynthesizeResult,
    TrainRequest,
    TrainResult,
)
from forge_core.files import (
    HashingWriter,
    atomic_path,
    read_jsonl,
    sha256_json,
    write_json_atomic,
    write_jsonl,
)
from forge_core.plugins import PluginNotFound, PluginRegistry
from forge_core.progress import Progress, SilentProgress
from forge_core.runs import STAGES, RunDir, RunError, StageManifest

#: The config section each stage records and hashes.
SECTION_OF = {
    "mine": "mine",
    "synth": "synth",
    "validate": "validation",
    "train": "train",
    "eval": "eval",
    "export": "export",
    "deploy": "deploy",
}

#: The stages whose outputs each stage is made from: its manifest records their hashes
#: under these names, and a stage made from an output that has since been replaced
#: (its upstream ran again) is out of date for whatever comes after it.
MADE_FROM: dict[str, tuple[str, ...]] = {
    "synth": ("mine",),
    "validate": ("synth", "mine"),
    "train": ("validate",),
    "eval": ("train", "validate"),
    "export": ("train",),
    "deploy": ("export", "eval"),
}

StageStatus = Literal["ran", "skipped", "missing", "failed"]


@dataclass
class StageOutcome:
    """What happened to one stage."""

    stage: str
    status: StageStatus
    message: str = ""
    manifest: StageManifest | None = None


@dataclass
class StageWork:
    """What a stage's work produced: files and figures for the manifest."""

    outputs: list[Path]
    metrics: dict[str, Any] = field(default_factory=dict)
    plugins: list[str] = field(default_factory=list)
    digests: dict[Path, str] = field(default_factory=dict)
    """sha256 of outputs hashed while they were written (spares reading them again)."""


class Forge:
    """The Forge pipeline on one run directory."""

    def __init__(
        self,
        settings: ForgeSettings | None = None,
        run_dir: Path | str | None = None,
        *,
        registry: PluginRegistry | None = None,
        progress: Progress | None = None,
        force: bool = False,
    ) -> None:
        self.settings = settings or ForgeSettings()
        self.registry = registry or PluginRegistry(disabled=self.settings.plugins.disabled)
        self.run = RunDir(run_dir) if run_dir else RunDir.create(self.settings.runs_dir)
        self.progress: Progress = progress or SilentProgress()
        self.force = force
        self.run.write_config(self.settings.model_dump(mode="json"))

    # ------------------------------------------------------------------ stage machinery

    def _stage(
        self,
        stage: str,
        inputs: dict[str, str],
        work: Callable[[Path], StageWork],
        *,
        rerun: bool = False,
    ) -> StageOutcome:
        """Skip a fresh stage, else run ``work`` and write the manifest last.

        ``rerun``: run even when fresh (what the stage made is gone).
        """
        config = self.settings.section(SECTION_OF[stage])
        if not (self.force or rerun) and self.run.is_fresh(stage, inputs, config):
            changed = self._changed_plugins(stage)
            if not changed:
                self.progress.stage(stage, "up to date, skipped")
                return StageOutcome(stage, "skipped", "up to date", self.run.completed(stage))
            self.progress.stage(stage, f"plugins changed since it ran ({changed}), running again")
        with self.run.lock(stage):
            self.run.invalidate(stage)
            self.progress.stage(stage, "running")
            started = time.time()
            result = work(self.run.stage_dir(stage))
            manifest = self.run.finish(
                stage,
                inputs=inputs,
                config=config,
                outputs=result.outputs,
                metrics=result.metrics,
                plugins=self.registry.versions(result.plugins),
                started=started,
                digests=result.digests,
            )
        self.progress.stage(stage, f"done in {manifest.wall_seconds:.1f}s")
        return StageOutcome(stage, "ran", "", manifest)

    def _changed_plugins(self, stage: str) -> str:
        """The plugins a completed stage used that are now another version or gone,
        as ``name old → new`` text; empty when none changed."""
        manifest = self.run.completed(stage)
        if manifest is None:
            return ""
        now = self.registry.versions(manifest.plugins)
        return ", ".join(
            f"{name} {version} → {now.get(name, 'not installed')}"
            for name, version in sorted(manifest.plugins.items())
            if now.get(name) != version
        )

    def _output_hash(self, stage: str) -> str:
        """A hash of a completed stage's outputs: the input hash of the next stage.

        Raises :class:`RunError` when ``stage`` (or a stage before it) was made from
        outputs that have been replaced since — ``forge train`` ran again after
        ``forge eval``, say — naming the earliest stage to run again: what follows
        must never be made from, or judged by, another model's results.
        """
        manifest = self.run.require(stage)
        for upstream in MADE_FROM.get(stage, ()):
            if manifest.inputs.get(upstream) != self._output_hash(upstream):
                raise RunError(
                    f"stage {stage!r} in {self.run.path} was made from an earlier "
                    f"{upstream!r} output ({upstream} has run again since); run "
                    f"`forge {stage} --run-dir {self.run.path}` first"
                )
        return sha256_json({k: v.sha256 for k, v in manifest.outputs.items()})

    # ------------------------------------------------------------------ stages

    def mine(self, repo: Path | str) -> StageOutcome:
        """Walk the repository and parse every supported file into code units."""
        from forge_core.mining import (
            MiningReport,
            ParseCache,
            choose_workers,
            mine_files,
        )
        from forge_core.walk import walk_repository

        section = self.settings.mine
        languages = self._languages()
        walk = walk_repository(
            Path(repo), languages, max_file_bytes=section.max_file_bytes, exclude=section.exclude
        )
        self.run.write_info(walk.root)
        fingerprint = sha256_json(
            [(f.relative, f.language, f.size, f.mtime_ns) for f in walk.files]
        )
        cache_dir = section.cache_dir or self.settings.runs_dir / ".cache" / "parse"

        def work(folder: Path) -> StageWork:
            report = MiningReport(workers=choose_workers(section.workers, walk))
            for reason, count in walk.skipped.items():
                report.skipped[reason] += count
                report.skipped_examples.setdefault(reason, walk.examples[reason])
            self.progress.start("mining", len(walk.files))
            # Units go to disk file by file, never all in memory at once; a thread
            # writes and hashes them while the next files are parsed.
            units_file = folder / "units.jsonl"
            with atomic_path(units_file) as partial, HashingWriter(partial) as units_out:
                for outcome in mine_files(
                    walk,
                    self.registry,
                    workers=report.workers,
                    cache=ParseCache(cache_dir if section.cache else None),
                    on_file=lambda n: self.progress.advance("mining", n),
                ):
                    report.add(outcome)
                    units_out.write(outcome.jsonl())
            self.progress.finish("mining")
            write_json_atomic(folder / "report.json", report.as_json())
            if not report.units:
                self.progress.warn(f"no code units found in {walk.root}; see mine/report.json")
            parsers = {self.registry.find("parse", lang) for lang in report.by_language}
            return StageWork(
                [units_file, folder / "report.json"],
                {"files": report.files, "units": report.units, "cached_files": report.cached_files},
                sorted(parsers),
                {units_file: units_out.hexdigest},
            )

        return self._stage("mine", {"repo": str(walk.root), "files": fingerprint}, work)

    def _languages(self) -> dict[str, LanguageSpec]:
        """The languages to mine: ``mine.languages``, else every installed one."""
        installed = {name: spec for name, (_, spec) in self.registry.languages().items()}
        wanted = self.settings.mine.languages or sorted(installed)
        for name in wanted:
            if name not in installed:
                raise PluginNotFound(self.registry.missing_message("parse", name))
        if not wanted:
            raise PluginNotFound(self.registry.missing_message("parse", "python"))
        return {name: installed[name] for name in wanted}

    def synth(self) -> StageOutcome:
        """Make training examples from the mined units."""
        section = self.settings.synth
        plugin = self.registry.find("synthesize", section.synthesizer)

        tokenizer = self.base_tokenizer_file()
        max_tokens = self.example_token_limit()

        def work(folder: Path) -> StageWork:
            units = read_jsonl(self.run.path / "mine" / "units.jsonl", CodeUnit)
            request = SynthesizeRequest(
                units=units,
                settings=self.settings.section("synth"),
                seed=section.seed,
                cache_dir=str(folder / "cache"),
                max_tokens=max_tokens,
                tokenizer_file=str(tokenizer) if tokenizer else None,
            )
            result = SynthesizeResult.model_validate(
                self.registry.call("synthesize", section.synthesizer, request)
            )
            count = write_jsonl(folder / "examples.jsonl", result.examples)
            return StageWork(
                [folder / "examples.jsonl"], {"examples": count, **result.stats}, [plugin]
            )

        inputs = {
            "mine": self._output_hash("mine"),
            "max_tokens": str(max_tokens),
            "tokenizer": str(tokenizer),
        }
        return self._stage("synth", inputs, work)

    def example_token_limit(self, count_tokens: Callable[[str], int] | None = None) -> int:
        """Most tokens the messages of one example may hold: the validation cap, or the
        trainer's sequence length less what the model's chat template adds around them.

        ``count_tokens``: the base model's token counter, when the caller has loaded it.
        """
        from forge_core.chat_template import ChatTemplateError, template_tokens
        from forge_core.validation import token_counter

        room = self.settings.train.max_seq_len
        tokenizer_file = self.base_tokenizer_file()
        if tokenizer_file is not None:
            if count_tokens is None:
                count_tokens, _ = token_counter(tokenizer_file)
            try:
                room -= template_tokens(tokenizer_file.parent, count_tokens)
            except ChatTemplateError as error:
                raise RunError(f"base model {tokenizer_file.parent}: {error}") from error
        return max(1, min(self.settings.validation.max_tokens, room))

    def validate(self) -> StageOutcome:
        """Check, deduplicate and score the examples, then split them into train/valid/test."""
        from forge_core.validation import (
            ValidationContext,
            plot_scores,
            token_counter,
            validate_examples,
        )

        def work(folder: Path) -> StageWork:
            examples = read_jsonl(self.run.path / "synth" / "examples.jsonl", Example)
            units = read_jsonl(self.run.path / "mine" / "units.jsonl", CodeUnit)
            count_tokens, tokenizer = token_counter(self.base_tokenizer_file())
            count_tokens.prime(m.content for e in examples for m in e.messages)
            # An example longer than the training sequence would be dropped by the trainer:
            # reject it here, where the report counts it.
            limit = self.example_token_limit(count_tokens)
            settings = self.settings.validation.model_copy(update={"max_tokens": limit})
            context = ValidationContext({u.id: u for u in units}, settings, count_tokens)
            splits, report = validate_examples(examples, context, self.registry.validation_checks())
            report.tokenizer = tokenizer
            for warning in report.warnings:
                self.progress.warn(warning)
            outputs = []
            for name, items in splits.items():
                write_jsonl(folder / f"{name}.jsonl", items)
                outputs.append(folder / f"{name}.jsonl")
            write_json_atomic(folder / "report.json", report.as_json())
            plot = plot_scores(report, folder / "scores.png")
            if not splits["train"]:
                raise RunError("validation kept no training examples; see validate/report.json")
            figures = {k: v for k, v in report.as_json().items() if k != "score_histogram"}
            return StageWork(
                [*outputs, folder / "report.json", *([plot] if plot else [])],
                figures,
                self.registry.validation_check_plugins(),
            )

        inputs = {
            "synth": self._output_hash("synth"),
            "mine": self._output_hash("mine"),
            "max_seq_len": str(self.settings.train.max_seq_len),
        }
        return self._stage("validate", inputs, work)

    def base_tokenizer_file(self) -> Path | None:
        """The base model's ``tokenizer.json``, when the base model is a local folder."""
        try:
            base = Path(self.resolve_base_model())
        except PluginNotFound:
            return None
        return base / "tokenizer.json" if (base / "tokenizer.json").is_file() else None

    def resolve_base_model(self) -> str:
        """The base model path: a registered name, a local path, or a hub id."""
        return self.registry.resolve_base_model(self.settings.train.base_model)

    def train(self) -> StageOutcome:
        """Train an adapter on the validated splits."""
        section = self.settings.train
        plugin = self.registry.find("train", section.trainer)
        base_model = self.resolve_base_model()

        def work(folder: Path) -> StageWork:
            request = TrainRequest(
                base_model=base_model,
                train_file=str(self.run.path / "validate" / "train.jsonl"),
                valid_file=str(self.run.path / "validate" / "valid.jsonl"),
                output_dir=str(folder),
                settings=self.settings.section("train"),
                disabled_plugins=self.settings.plugins.disabled,
            )
            result = TrainResult.model_validate(
                self.registry.call("train", section.trainer, request)
            )
            write_json_atomic(folder / "result.json", result.model_dump(mode="json"))
            extras = [Path(p) for p in (result.log_file, result.plot_file) if p]
            return StageWork(
                [Path(result.adapter_dir), folder / "result.json", *extras],
                result.metrics,
                [plugin],
            )

        return self._stage(
            "train", {"validate": self._output_hash("validate"), "base_model": base_model}, work
        )

    def trained(self) -> TrainResult:
        """The completed train stage's result."""
        self.run.require("train")
        return TrainResult.model_validate_json(
            (self.run.path / "train" / "result.json").read_text()
        )

    def evaluate(self) -> StageOutcome:
        """Score the base and the fine-tuned model on the test split; apply the gate."""
        from forge_core.deployed import GateReference, gate_reference
        from forge_core.eval_gguf import GgufExport
        from forge_core.evaluation import evaluate_run

        section = self.settings.eval
        backend = self.registry.model_backend(section.backend)
        used = {self.registry.model_backend_plugin(section.backend)}
        used.update(self.registry.find("evaluate", metric) for metric in section.metrics)
        reference = GateReference()
        if section.gate.enabled:  # a disabled gate needs no third model
            reference = gate_reference(
                section.gate.reference,
                self.settings.runs_dir,
                self._output_hash("train"),
                self.settings.validation.split_by,
            )
        gguf_export = None
        if "hf" not in backend.formats:  # it runs exported files: make them first
            used.add(self.registry.find("export", self.settings.export.exporter))
            gguf_export = GgufExport(self.settings.export.exporter, self._export_settings())

        def work(folder: Path) -> StageWork:
            document, written = evaluate_run(
                self.registry,
                section,
                self.run.path,
                self.trained(),
                self.progress,
                reference,
                gguf_export,
            )
            write_json_atomic(folder / "metrics.json", document)
            metrics = {**document["metrics"], "gate": document["gate"]}
            return StageWork([folder / "metrics.json", *written], metrics, sorted(used))

        inputs = {"train": self._output_hash("train"), "validate": self._output_hash("validate")}
        if reference.key != "base":  # a newly deployed model is a new reference
            inputs["reference"] = reference.key
        if gguf_export is not None:  # the files evaluated depend on how they are exported
            inputs["export"] = sha256_json([gguf_export.exporter, gguf_export.settings])
        return self._stage("eval", inputs, work)

    def export(self) -> StageOutcome:
        """Merge the adapter into its base and write deployable files."""
        section = self.settings.export
        plugin = self.registry.find("export", section.exporter)

        def work(folder: Path) -> StageWork:
            trained = self.trained()
            request = ExportRequest(
                base_model=trained.base_model,
                adapter_dir=trained.adapter_dir,
                output_dir=str(folder),
                settings=self._export_settings(),
            )
            result = ExportResult.model_validate(
                self.registry.call("export", section.exporter, request)
            )
            write_json_atomic(folder / "result.json", result.model_dump(mode="json"))
            failed = [a.quantization for a in result.artifacts if not a.passed]
            if failed:
                raise RunError(
                    f"export fidelity check failed for {', '.join(failed)}; "
                    f"see {folder / 'result.json'}"
                )
            return StageWork(
                [Path(a.path) for a in result.artifacts] + [folder / "result.json"],
                {a.quantization: a.fidelity for a in result.artifacts},
                [plugin],
            )

        return self._stage("export", {"train": self._output_hash("train")}, work)

    def deploy(self) -> StageOutcome:
        """Serve the exported model; refuse a model that failed the quality gate."""
        section = self.settings.deploy
        plugin = self.registry.find("deploy", section.target)
        # Both made from the current adapter (checked here), so the verdict is this model's;
        # a new adapter is a new deployment even when its exported file comes out the same.
        inputs = {
            "export": self._output_hash("export"),
            "eval": self._output_hash("eval"),
            "train": self._output_hash("train"),
        }
        gate = self.run.require("eval").metrics.get("gate", {})
        if not gate.get("passed", False) and not section.force:
            reasons = "; ".join(gate.get("reasons", [])) or "no verdict"
            raise RunError(
                f"the quality gate failed ({reasons}); set deploy.force=true to deploy anyway"
            )

        def work(folder: Path) -> StageWork:
            artifact = self._served_artifact()
            settings = self.settings.section("deploy")
            if settings.get("system_prompt") is None:
                settings["system_prompt"] = self._trained_system_prompt()
            request = DeployRequest(
                artifact=artifact,
                model_name=section.model_name or f"forge-{self.run.id}",
                output_dir=str(folder),
                settings=settings,
            )
            result = DeployResult.model_validate(
                self.registry.call("deploy", section.target, request)
            )
            write_json_atomic(folder / "deployment.json", result.model_dump(mode="json"))
            self._record_deployment(result, artifact)
            return StageWork([folder / "deployment.json"], {"endpoint": result.endpoint}, [plugin])

        return self._stage("deploy", inputs, work, rerun=self._server_gone())

    def _export_settings(self) -> dict[str, Any]:
        """The ``export`` section for the exporter; fidelity is checked on the test split."""
        settings = self.settings.section("export")
        held_out = self.run.path / "validate" / "test.jsonl"
        if settings.get("fidelity_file") is None and held_out.is_file():
            settings["fidelity_file"] = str(held_out)
        return settings

    def _record_deployment(self, result: DeployResult, served: ExportArtifact) -> None:
        """Make this run's model the currently deployed one (``<runs_dir>/deployed.json``),
        with a copy of its adapter, so retraining this run later cannot change it.

        ``served`` is the exported file the deployment serves."""
        from forge_core.deployed import (
            DeployedModel,
            now_iso,
            pinned_adapter_dir,
            record_deployment,
            trained_paths,
        )

        trained = self.trained()
        artifact = Path(served.path).resolve()
        exported = self.run.require("export").outputs
        run_path = self.run.path.resolve()
        inside = artifact.is_relative_to(run_path)
        relative = artifact.relative_to(run_path).as_posix() if inside else ""
        record = DeployedModel(
            run_id=self.run.id,
            run_dir=str(run_path),
            target=result.target,
            model_name=result.model_name,
            endpoint=result.endpoint,
            base_model=trained.base_model,
            adapter_dir=str(pinned_adapter_dir(self.settings.runs_dir)),
            model_hash=self._output_hash("train"),
            deployed_at=now_iso(),
            artifact=str(artifact),
            artifact_sha256=exported[relative].sha256 if relative in exported else None,
            trained_paths=trained_paths(self.run.path / "validate" / "train.jsonl"),
            split_by=self.settings.validation.split_by,
        )
        record_deployment(self.settings.runs_dir, record, Path(trained.adapter_dir))

    def _served_artifact(self) -> ExportArtifact:
        """The exported file the deploy stage serves: the first artifact of the export."""
        exported = ExportResult.model_validate_json(
            (self.run.path / "export" / "result.json").read_text()
        )
        return exported.artifacts[0]

    def _server_gone(self) -> bool:
        """True when the last deploy started a server (it has a pid) that no longer
        serves its model: stopped, crashed, the machine restarted, or another server
        took its port. Deploying again is then not "up to date"."""
        from forge_core.chat import endpoint_answers

        try:
            deployed = self.deployment()
        except RunError:  # never deployed
            return False
        if deployed.pid is None or endpoint_answers(deployed.endpoint, deployed.model_name):
            return False
        self.progress.stage(
            "deploy",
            f"the server of the last deploy no longer serves {deployed.model_name} "
            f"at {deployed.endpoint}",
        )
        return True

    def _trained_system_prompt(self) -> str | None:
        """The system message of the training examples (what the model learned to follow)."""
        train = self.run.path / "validate" / "train.jsonl"
        if not train.is_file():
            return None
        with open(train, encoding="utf-8") as handle:
            first = handle.readline()
        if not first.strip():
            return None
        messages = Example.model_validate_json(first).messages
        return messages[0].content if messages and messages[0].role == "system" else None

    def deployment(self) -> DeployResult:
        """The run's deployment, as written by the deploy stage."""
        self.run.require("deploy")
        return DeployResult.model_validate_json(
            (self.run.path / "deploy" / "deployment.json").read_text()
        )

    # ------------------------------------------------------------------ everything

    def run_all(self, repo: Path | str) -> list[StageOutcome]:
        """Run every stage in order; stop at the first one whose plugin is missing.

        Stages after a missing one are reported as missing too, each with what
        it would need, so one run tells the user everything to install.
        """
        steps: list[tuple[str, Callable[[], StageOutcome]]] = [
            ("mine", lambda: self.mine(repo)),
            ("synth", self.synth),
            ("validate", self.validate),
            ("train", self.train),
            ("eval", self.evaluate),
            ("export", self.export),
            ("deploy", self.deploy),
        ]
        assert [name for name, _ in steps] == list(STAGES)
        outcomes: list[StageOutcome] = []
        blocked_by: str | None = None
        for name, step in steps:
            if blocked_by is not None:
                outcomes.append(
                    StageOutcome(name, "missing", self.preflight(name) or f"needs {blocked_by}")
                )
                continue
            try:
                outcomes.append(step())
            except PluginNotFound as exc:
                outcomes.append(StageOutcome(name, "missing", str(exc)))
                blocked_by = name
            except RunError as exc:
                outcomes.append(StageOutcome(name, "failed", str(exc)))
                blocked_by = name
        return outcomes

    def preflight(self, stage: str) -> str | None:
        """Why ``stage`` could not run with the installed plugins, or None."""
        checks: dict[str, Callable[[], object]] = {
            "mine": self._languages,
            "synth": lambda: self.registry.find("synthesize", self.settings.synth.synthesizer),
            "validate": lambda: None,
            "train": lambda: (
                self.registry.find("train", self.settings.train.trainer),
                self.resolve_base_model(),
            ),
            "eval": lambda: (
                [self.registry.model_backend(self.settings.eval.backend)]
                + [self.registry.find("evaluate", m) for m in self.settings.eval.metrics]
            ),
            "export": lambda: self.registry.find("export", self.settings.export.exporter),
            "deploy": lambda: self.registry.find("deploy", self.settings.deploy.target),
        }
        try:
            checks[stage]()
        except PluginNotFound as exc:
            return str(exc)
        return None
