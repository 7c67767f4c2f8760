"""The pipeline end to end with the toy plugin: outputs, caching, gate, missing plugins."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from forge_core.config import ForgeSettings
from forge_core.contracts import CodeUnit, Example
from forge_core.files import read_jsonl
from forge_core.pipeline import Forge
from forge_core.plugins import PluginNotFound, PluginRegistry
from forge_core.runs import STAGES, RunError
from tests.core.toy_plugin import ToyBackend, ToyPlugin, trained_run


def test_run_all_writes_every_stage(
    toy_settings: ForgeSettings, toy_registry: PluginRegistry, toy_repo: Path, tmp_path: Path
) -> None:
    forge = Forge(toy_settings, tmp_path / "run", registry=toy_registry)
    outcomes = forge.run_all(toy_repo)
    assert [(o.stage, o.status) for o in outcomes] == [(s, "ran") for s in STAGES]
    units = read_jsonl(forge.run.path / "mine" / "units.jsonl", CodeUnit)
    assert len(units) == 18 and units[0].id == "pkg0/mod0.toy::f0_0"
    assert not any("node_modules" in u.path for u in units)
    # Hashed as it was written: the manifest's digest is the file's.
    record = forge.run.require("mine").outputs["mine/units.jsonl"]
    written = (forge.run.path / "mine" / "units.jsonl").read_bytes()
    assert (record.sha256, record.size) == (hashlib.sha256(written).hexdigest(), len(written))
    splits = {
        s: read_jsonl(forge.run.path / "validate" / f"{s}.jsonl", Example)
        for s in ("train", "valid", "test")
    }
    assert sum(len(v) for v in splits.values()) == 18
    test_files = {e.path for e in splits["test"]}
    assert test_files and not test_files & {e.path for e in splits["train"]}
    metrics = json.loads((forge.run.path / "eval" / "metrics.json").read_text())
    assert metrics["metrics"]["fine_tuned"]["toy_metric"] == 1.0
    assert metrics["metrics"]["base"]["toy_metric"] == 0.0
    assert metrics["gate"]["passed"] is True
    # Every test question with both models' answers (the toy base knows none of them).
    answers = [json.loads(line) for line in (forge.run.path / "eval" / "answers.jsonl").open()]
    assert [a["id"] for a in answers] == [e.id for e in splits["test"]]
    assert all(a["base"] == "<ANSWER>: unknown" for a in answers)
    assert all(a["fine_tuned"] != a["base"] and a["reference"] for a in answers)
    assert "eval/answers.jsonl" in forge.run.require("eval").outputs
    assert forge.deployment().endpoint == "http://127.0.0.1:9/v1"
    manifest = forge.run.require("train")
    assert manifest.plugins == {"toy": "1.2.3"} and manifest.config["trainer"] == "toy"
    saved = json.loads((forge.run.path / "config.json").read_text())
    assert saved["train"]["trainer"] == "toy"


def test_unchanged_stages_are_skipped_and_force_reruns(
    toy_settings: ForgeSettings, toy_registry: PluginRegistry, toy_repo: Path, tmp_path: Path
) -> None:
    Forge(toy_settings, tmp_path / "run", registry=toy_registry).run_all(toy_repo)
    again = Forge(toy_settings, tmp_path / "run", registry=toy_registry).run_all(toy_repo)
    assert {o.status for o in again} == {"skipped"}
    forced = Forge(toy_settings, tmp_path / "run", registry=toy_registry, force=True).mine(toy_repo)
    assert forced.status == "ran"


def test_deploy_runs_again_when_its_server_no_longer_answers(
    toy_settings: ForgeSettings,
    toy_plugin: ToyPlugin,
    toy_registry: PluginRegistry,
    toy_repo: Path,
    tmp_path: Path,
) -> None:
    """A deploy that started a server is "up to date" only while that server answers."""
    import http.server
    import threading

    class Models(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/v1/models" else 404)
            self.end_headers()
            self.wfile.write(b'{"data": [{"id": "forge-run"}]}')  # the deployed model

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Models)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        toy_plugin.deploy_pid = 4242
        toy_plugin.deploy_endpoint = f"http://127.0.0.1:{server.server_address[1]}/v1"
        Forge(toy_settings, tmp_path / "run", registry=toy_registry).run_all(toy_repo)
        # The server answers: nothing to do.
        again = Forge(toy_settings, tmp_path / "run", registry=toy_registry).deploy()
        assert again.status == "skipped"
    finally:
        server.shutdown()
        server.server_close()
    # Stopped: deploying again starts it again instead of saying "up to date".
    after = Forge(toy_settings, tmp_path / "run", registry=toy_registry).deploy()
    assert after.status == "ran"
    assert toy_plugin.calls.count("deploy") == 2


def test_changed_file_reruns_mine_and_everything_after(
    toy_settings: ForgeSettings,
    toy_plugin: ToyPlugin,
    toy_registry: PluginRegistry,
    toy_repo: Path,
    tmp_path: Path,
) -> None:
    forge = Forge(toy_settings, tmp_path / "run", registry=toy_registry)
    forge.run_all(toy_repo)
    # A file the model trains on (the toy adapter records the number of training examples).
    trained_on = read_jsonl(forge.run.path / "validate" / "train.jsonl", Example)[0].path
    (toy_repo / trained_on).write_text("def renamed\n")
    outcomes = Forge(toy_settings, tmp_path / "run", registry=toy_registry).run_all(toy_repo)
    # A new adapter is deployed even though the toy export comes out byte-identical.
    assert [o.status for o in outcomes] == ["ran"] * 7


def test_stages_made_from_replaced_outputs_must_run_again(
    toy_settings: ForgeSettings, toy_registry: PluginRegistry, toy_repo: Path, tmp_path: Path
) -> None:
    """Retraining without evaluating and exporting again must not deploy: the gate's
    verdict and the exported file would be another model's."""
    forge = Forge(toy_settings, tmp_path / "run", registry=toy_registry)
    forge.run_all(toy_repo)
    trained_on = read_jsonl(forge.run.path / "validate" / "train.jsonl", Example)[0].path
    (toy_repo / trained_on).write_text("def renamed\nbody\n")
    again = Forge(toy_settings, tmp_path / "run", registry=toy_registry)
    for stage in (lambda: again.mine(toy_repo), again.synth, again.validate, again.train):
        assert stage().status == "ran"
    with pytest.raises(RunError, match=r"stage 'export' .* earlier 'train' output"):
        again.deploy()
    again.export()
    with pytest.raises(RunError, match=r"stage 'eval' .* earlier 'train' output .* `forge eval"):
        again.deploy()
    again.evaluate()
    assert again.deploy().status == "ran"
    deployed = json.loads((toy_settings.runs_dir / "deployed.json").read_text())
    assert deployed["model_hash"] == again.run.require("eval").inputs["train"]
    # The same holds earlier on: new examples must be validated before training.
    (toy_repo / trained_on).write_text("def renamed_again\nbody\n")
    again.mine(toy_repo)
    again.synth()
    with pytest.raises(RunError, match=r"stage 'validate' .* earlier 'synth' output"):
        again.train()


def test_an_upgraded_plugin_reruns_the_stages_it_made(
    toy_settings: ForgeSettings,
    toy_plugin: ToyPlugin,
    toy_registry: PluginRegistry,
    toy_repo: Path,
    tmp_path: Path,
) -> None:
    """A new parser (or trainer...) version must not leave the old one's output "up to date"."""
    Forge(toy_settings, tmp_path / "run", registry=toy_registry).run_all(toy_repo)
    upgraded = PluginRegistry(entry_points=False)
    upgraded.register(toy_plugin, "toy", distribution="toy-dist", version="1.3.0")
    outcomes = Forge(toy_settings, tmp_path / "run", registry=upgraded).run_all(toy_repo)
    # Validation's checks are the core's own here: its output is still up to date.
    assert [(o.stage, o.status) for o in outcomes] == [
        (stage, "skipped" if stage == "validate" else "ran") for stage in STAGES
    ]
    assert Forge(toy_settings, tmp_path / "run", registry=upgraded).run.require("mine").plugins == {
        "toy": "1.3.0"
    }
    again = Forge(toy_settings, tmp_path / "run", registry=upgraded).run_all(toy_repo)
    assert {o.status for o in again} == {"skipped"}


def test_changed_config_section_reruns_that_stage_only(
    toy_settings: ForgeSettings, toy_registry: PluginRegistry, toy_repo: Path, tmp_path: Path
) -> None:
    Forge(toy_settings, tmp_path / "run", registry=toy_registry).run_all(toy_repo)
    toy_settings.deploy.port = 9999
    outcomes = Forge(toy_settings, tmp_path / "run", registry=toy_registry).run_all(toy_repo)
    assert [o.status for o in outcomes] == ["skipped"] * 6 + ["ran"]


def test_gate_refuses_a_regression() -> None:
    from forge_core.config import GateSettings
    from forge_core.contracts import EvaluateResult
    from forge_core.evaluation import apply_gate

    def result(name: str, value: float, higher: bool = True) -> dict[str, EvaluateResult]:
        return {name: EvaluateResult(metric=name, value=value, higher_is_better=higher)}

    gate = GateSettings(max_regression=0.1, max_hallucination_rate=0.2)
    verdict = apply_gate(gate, result("exact_match", 0.8), result("exact_match", 0.5))
    assert not verdict.passed and "exact_match regressed from 0.8 to 0.5" in verdict.reasons[0]
    assert apply_gate(gate, result("exact_match", 0.8), result("exact_match", 0.75)).passed
    lower = apply_gate(gate, result("perplexity", 5.0, False), result("perplexity", 4.0, False))
    assert lower.passed
    hallucinating = apply_gate(gate, {}, result("hallucination", 0.3, False))
    assert not hallucinating.passed and "hallucination rate 30.00%" in hallucinating.reasons[0]


def test_evaluation_batches_prompts_of_similar_length_and_keeps_sample_order() -> None:
    from forge_core.backends import ModelBackendSpec
    from forge_core.config import EvalSettings
    from forge_core.contracts import ChatMessage
    from forge_core.evaluation import GENERATION_BATCH, run_model
    from forge_core.hookspecs import hookimpl

    batches: list[list[int]] = []
    # The toy backend answers with the question's last word; it records each batch's
    # prompt lengths and scores each conversation by its answer's length.
    backend = ToyBackend(adapter="tuned")
    answer = backend.generate

    def recording_generate(conversations: list[list[ChatMessage]], **options: Any) -> list[str]:
        batches.append([len(c[-1].content) for c in conversations])
        return answer(conversations, **options)

    backend.generate = recording_generate  # type: ignore[method-assign]
    backend.score = lambda conversations: [  # type: ignore[method-assign]
        [-float(len(c[-1].content))] for c in conversations
    ]

    class RecordingPlugin:
        @hookimpl
        def register_model_backends(self) -> list[ModelBackendSpec]:
            return [ModelBackendSpec("recording", lambda *_: backend)]

    registry = PluginRegistry(entry_points=False)
    registry.register(RecordingPlugin(), "recording")
    # Long and short questions alternate: batched in file order, every batch would mix them.
    lengths = [300 if i % 2 else 10 + i for i in range(2 * GENERATION_BATCH)]
    examples = [
        Example(
            id=f"e{i}",
            messages=[
                ChatMessage(role="user", content="x" * (n - 6) + f" name{i}"),
                ChatMessage(role="assistant", content=f"<ANSWER>: name{i}"),
            ],
            question_type="t",
            language="python",
            path="a.py",
            oracle_id="u",
        )
        for i, n in enumerate(lengths)
    ]
    samples = run_model(registry, EvalSettings(backend="recording"), "m", None, examples)

    asked = [len(e.messages[0].content) for e in examples]
    assert [sorted(b) for b in batches] == [sorted(asked[1::2]), sorted(asked[0::2])]
    assert min(batches[0]) >= 300 > max(batches[1])
    assert [s.id for s in samples] == [e.id for e in examples]  # the caller's order
    assert [s.prediction for s in samples] == [f"<ANSWER>: name{i}" for i in range(len(lengths))]
    # Each sample is scored on its own conversation (its last message: the answer).
    assert [s.token_logprobs for s in samples] == [
        [-float(len(e.messages[-1].content))] for e in examples
    ]


def test_eval_warns_when_reference_answers_do_not_fit_the_answer_budget(
    toy_settings: ForgeSettings, toy_registry: PluginRegistry, toy_repo: Path, tmp_path: Path
) -> None:
    # The toy backend scores every reference answer on 4 tokens, the answer's 3 and the
    # end of turn: a budget of 2 cuts them all before their final answer, so exact match
    # could not count any of them.
    toy_settings.eval.max_new_tokens = 2
    forge = trained_run(toy_settings, toy_registry, toy_repo, tmp_path / "run")
    forge.evaluate()
    document = json.loads((forge.run.path / "eval" / "metrics.json").read_text())
    generation = document["generation"]
    questions = len(read_jsonl(forge.run.path / "validate" / "test.jsonl", Example))
    assert generation["questions"] == questions > 0
    assert generation["max_new_tokens"] == 2
    assert generation["longest_reference_tokens"] == 3
    assert generation["references_over_budget"] == questions
    expected = f"{questions} of {questions} reference answers are longer than eval.max_new_tokens"
    assert generation["warning"].startswith(expected)
    assert "at least 3" in generation["warning"]
    progress: Any = forge.progress  # SilentProgress: it keeps the warnings
    assert [w for w in progress.warnings if "max_new_tokens" in w] == [generation["warning"]]
    report = (forge.run.path / "eval" / "report.html").read_text()
    assert "at least 3 for a fair exact match" in report
    # With room for the longest answer there is nothing to say.
    toy_settings.eval.max_new_tokens = 3
    forge = Forge(toy_settings, tmp_path / "run", registry=toy_registry)
    assert forge.evaluate().status == "ran"
    document = json.loads((forge.run.path / "eval" / "metrics.json").read_text())
    assert document["generation"]["references_over_budget"] == 0
    assert document["generation"]["warning"] is None
    assert "fair exact match" not in (forge.run.path / "eval" / "report.html").read_text()


def test_deploy_refuses_failing_gate(
    toy_settings: ForgeSettings, toy_registry: PluginRegistry, toy_repo: Path, tmp_path: Path
) -> None:
    toy_settings.eval.gate.max_regression = 0.0
    forge = trained_run(toy_settings, toy_registry, toy_repo, tmp_path / "run")
    forge.evaluate()
    document = json.loads((forge.run.path / "eval" / "metrics.json").read_text())
    assert document["gate"]["passed"]
    forge.export()
    manifest = forge.run.require("eval")
    manifest.metrics["gate"] = {"passed": False, "reasons": ["planted failure"]}
    (forge.run.manifest_path("eval")).write_text(manifest.model_dump_json())
    with pytest.raises(RunError, match=r"planted failure.*deploy.force=true"):
        forge.deploy()
    toy_settings.deploy.force = True
    assert forge.deploy().status == "ran"


def test_missing_plugins_are_reported_for_every_stage(tmp_path: Path, toy_repo: Path) -> None:
    registry = PluginRegistry(entry_points=False)
    settings = ForgeSettings(runs_dir=tmp_path / "runs")
    outcomes = Forge(settings, registry=registry).run_all(toy_repo)
    assert [o.status for o in outcomes] == ["missing"] * len(STAGES)
    assert "forge-python" in outcomes[0].message
    assert "forge-raft" in outcomes[1].message
    assert "forge-torch" in outcomes[3].message
    assert "forge-gguf" in outcomes[5].message


def test_unknown_base_model_is_explained(
    toy_settings: ForgeSettings, toy_registry: PluginRegistry, tmp_path: Path
) -> None:
    toy_settings.train.base_model = "no-such-model"
    forge = Forge(toy_settings, tmp_path / "run", registry=toy_registry)
    with pytest.raises(PluginNotFound, match="neither a registered name \\(toybase\\)"):
        forge.resolve_base_model()


def test_stage_before_its_input_names_the_command(
    toy_settings: ForgeSettings, toy_registry: PluginRegistry, tmp_path: Path
) -> None:
    forge = Forge(toy_settings, tmp_path / "run", registry=toy_registry)
    with pytest.raises(RunError, match="forge mine REPO --run-dir"):
        forge.synth()
