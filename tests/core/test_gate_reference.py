"""The quality gate against the currently deployed model (``eval.gate.reference``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from forge_core.config import ForgeSettings
from forge_core.contracts import Example
from forge_core.deployed import DEPLOYED_FILE, DeployedModel
from forge_core.files import read_jsonl, sha256_file
from forge_core.pipeline import Forge
from forge_core.plugins import PluginRegistry
from forge_core.runs import RunError
from tests.core.toy_plugin import ToyPlugin, trained_run


def metrics_document(forge: Forge) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((forge.run.path / "eval" / "metrics.json").read_text())
    return document


def make_worse(forge: Forge) -> None:
    """The toy backend answers as the base model with this adapter."""
    (Path(forge.trained().adapter_dir) / "worse").write_text("")


def test_deploy_records_the_currently_deployed_model(
    toy_settings: ForgeSettings, toy_registry: PluginRegistry, toy_repo: Path, tmp_path: Path
) -> None:
    first = Forge(toy_settings, tmp_path / "first", registry=toy_registry)
    first.run_all(toy_repo)
    record_path = toy_settings.runs_dir / DEPLOYED_FILE
    record = DeployedModel.model_validate_json(record_path.read_text())
    assert record.run_id == first.run.id
    assert record.run_dir == str(first.run.path.resolve())
    # The adapter is pinned: a copy next to the record, so retraining the run cannot change it.
    pinned = toy_settings.runs_dir / "deployed" / "adapter"
    assert record.adapter_dir == str(pinned.resolve())
    adapter = Path(first.trained().adapter_dir)
    assert (pinned / "adapter.json").read_text() == (adapter / "adapter.json").read_text()
    assert record.model_hash == first._output_hash("train")
    train = read_jsonl(first.run.path / "validate" / "train.jsonl", Example)
    assert record.trained_paths == sorted({e.path for e in train})
    assert record.artifact == str((first.run.path / "export" / "model-Q8_0.gguf").resolve())
    assert record.artifact_sha256 == sha256_file(Path(record.artifact))
    assert (record.target, record.endpoint) == ("toy", "http://127.0.0.1:9/v1")
    assert record.model_name == f"forge-{first.run.id}" and record.base_model == "toy/base"
    # The last deploy is the deployed model.
    second = Forge(toy_settings, tmp_path / "second", registry=toy_registry)
    second.run_all(toy_repo)
    assert DeployedModel.model_validate_json(record_path.read_text()).run_id == second.run.id


def test_gate_compares_with_the_deployed_model(
    toy_settings: ForgeSettings, toy_registry: PluginRegistry, toy_repo: Path, tmp_path: Path
) -> None:
    toy_settings.eval.gate.reference = "deployed"
    # A first run: nothing is deployed yet, so the base model is the reference.
    first = Forge(toy_settings, tmp_path / "first", registry=toy_registry)
    first.run_all(toy_repo)
    document = metrics_document(first)
    assert document["gate"]["passed"] is True
    assert document["gate"]["reference"] == "the base model"
    assert "no model has been deployed" in document["gate"]["reasons"][0]
    assert "deployed" not in document["metrics"]
    progress: Any = first.progress
    assert any("no model has been deployed" in warning for warning in progress.warnings)

    # A worse candidate: as good as the base (so a base reference lets it through),
    # worse than the deployed first run: the gate must refuse it.
    candidate = trained_run(toy_settings, toy_registry, toy_repo, tmp_path / "candidate")
    make_worse(candidate)
    assert candidate.evaluate().status == "ran"
    document = metrics_document(candidate)
    metrics = document["metrics"]
    assert (metrics["base"]["toy_metric"], metrics["fine_tuned"]["toy_metric"]) == (0.0, 0.0)
    assert metrics["deployed"]["toy_metric"] == 1.0
    assert document["gate"]["passed"] is False
    assert document["gate"]["reference"] == f"the deployed model (run {first.run.id}, forge-first)"
    assert document["gate"]["reasons"] == [
        "toy_metric regressed from 1 to 0 (more than 2%)",
        "code_perplexity regressed from 1.649 to 7.389 (more than 2%)",
    ]
    with pytest.raises(RunError, match="toy_metric regressed from 1 to 0"):
        candidate.export()
        candidate.deploy()
    answers = [json.loads(line) for line in (candidate.run.path / "eval" / "answers.jsonl").open()]
    assert answers and all(a["deployed"] == a["reference"] for a in answers)
    report = (candidate.run.path / "eval" / "report.html").read_text()
    assert f"Compared with the deployed model (run {first.run.id}, forge-first)." in report
    assert "<th>deployed</th>" in report

    # The same candidate against the base model passes: the reference made the difference.
    toy_settings.eval.gate.reference = "base"
    against_base = Forge(toy_settings, tmp_path / "candidate", registry=toy_registry)
    assert against_base.evaluate().status == "ran"
    document = metrics_document(against_base)
    assert document["gate"]["passed"] is True and "deployed" not in document["metrics"]


def test_eval_runs_again_when_another_model_is_deployed(
    toy_settings: ForgeSettings, toy_registry: PluginRegistry, toy_repo: Path, tmp_path: Path
) -> None:
    toy_settings.eval.gate.reference = "deployed"
    Forge(toy_settings, tmp_path / "first", registry=toy_registry).run_all(toy_repo)
    candidate = trained_run(toy_settings, toy_registry, toy_repo, tmp_path / "candidate")
    assert candidate.evaluate().status == "ran"
    assert candidate.evaluate().status == "skipped"  # same reference: up to date
    newer = Forge(toy_settings, tmp_path / "newer", registry=toy_registry)
    newer.run_all(toy_repo)
    again = Forge(toy_settings, tmp_path / "candidate", registry=toy_registry)
    assert again.evaluate().status == "ran"
    assert f"run {newer.run.id}" in metrics_document(again)["gate"]["reference"]


def test_retraining_the_deployed_run_in_place_still_compares_with_what_is_served(
    toy_settings: ForgeSettings, toy_registry: PluginRegistry, toy_repo: Path, tmp_path: Path
) -> None:
    toy_settings.eval.gate.reference = "deployed"
    first = Forge(toy_settings, tmp_path / "first", registry=toy_registry)
    first.run_all(toy_repo)
    # Running it again changes nothing: its model is the deployed one, nothing reruns.
    again = Forge(toy_settings, tmp_path / "first", registry=toy_registry).run_all(toy_repo)
    assert {o.status for o in again} == {"skipped"}
    # The repository changes; the same run folder is retrained, into a worse model.
    trained_on = read_jsonl(first.run.path / "validate" / "train.jsonl", Example)[0].path
    (toy_repo / trained_on).write_text("def renamed\nbody\n")
    retrained = trained_run(toy_settings, toy_registry, toy_repo, tmp_path / "first")
    make_worse(retrained)
    assert retrained.evaluate().status == "ran"
    document = metrics_document(retrained)
    assert document["metrics"]["deployed"]["toy_metric"] == 1.0  # the pinned copy
    assert document["metrics"]["fine_tuned"]["toy_metric"] == 0.0
    assert document["gate"]["passed"] is False


def test_a_deployed_model_that_is_gone_or_unreadable(
    toy_settings: ForgeSettings, toy_registry: PluginRegistry, toy_repo: Path, tmp_path: Path
) -> None:
    toy_settings.eval.gate.reference = "deployed"
    first = Forge(toy_settings, tmp_path / "first", registry=toy_registry)
    first.run_all(toy_repo)
    shutil.rmtree(toy_settings.runs_dir / "deployed" / "adapter")
    candidate = trained_run(toy_settings, toy_registry, toy_repo, tmp_path / "candidate")
    assert candidate.evaluate().status == "ran"
    document = metrics_document(candidate)
    assert document["gate"]["reference"] == "the base model"
    assert "no longer exists" in document["gate"]["reasons"][0]
    (toy_settings.runs_dir / DEPLOYED_FILE).write_text("{not json")
    with pytest.raises(RunError, match=r"(?s)deployed\.json cannot be read.*delete the file"):
        Forge(toy_settings, tmp_path / "candidate", registry=toy_registry).evaluate()


def test_the_verdict_counts_test_questions_the_deployed_model_trained_on(
    toy_settings: ForgeSettings, toy_registry: PluginRegistry, toy_repo: Path, tmp_path: Path
) -> None:
    toy_settings.eval.gate.reference = "deployed"
    first = Forge(toy_settings, tmp_path / "first", registry=toy_registry)
    first.run_all(toy_repo)
    first_train = {e.path for e in read_jsonl(first.run.path / "validate" / "train.jsonl", Example)}
    # Same files, same seed: the same split, nothing in the test split was trained on.
    same = trained_run(toy_settings, toy_registry, toy_repo, tmp_path / "same")
    same.evaluate()
    assert metrics_document(same)["gate"]["reference_trained_on"] == 0
    # Another seed splits the files otherwise: its test file is one the first run trained on.
    toy_settings.validation.seed = 2
    other = trained_run(toy_settings, toy_registry, toy_repo, tmp_path / "other")
    other.evaluate()
    test = read_jsonl(other.run.path / "validate" / "test.jsonl", Example)
    expected = sum(e.path in first_train for e in test)
    gate = metrics_document(other)["gate"]
    assert gate["reference_trained_on"] == expected > 0
    assert gate["reasons"][-1] == (
        f"{expected} of {len(test)} test questions are about files the deployed model "
        f"(run {first.run.id}, forge-first) was trained on, which flatters it on those"
    )


def test_a_gguf_backend_evaluates_exported_files(
    toy_settings: ForgeSettings,
    toy_plugin: ToyPlugin,
    toy_registry: PluginRegistry,
    toy_repo: Path,
    tmp_path: Path,
) -> None:
    # eval runs before export, yet a GGUF-only backend (llamacpp) must get files: the eval
    # stage exports each model itself, with the quantisation the deploy stage serves.
    toy_settings.eval.backend = "toygguf"
    toy_settings.export.quantizations = ["Q8_0", "Q4_K_M"]
    forge = trained_run(toy_settings, toy_registry, toy_repo, tmp_path / "run")
    toy_plugin.calls.clear()
    assert forge.evaluate().status == "ran"
    models = forge.run.path / "eval" / "models"
    assert (models / "base" / "model-Q8_0.gguf").read_text() == "GGUF-toy adapter=none"
    adapter = forge.trained().adapter_dir
    assert (models / "fine_tuned" / "model-Q8_0.gguf").read_text() == f"GGUF-toy adapter={adapter}"
    assert toy_plugin.calls == ["export", "export"]
    metrics = metrics_document(forge)["metrics"]
    assert (metrics["base"]["toy_metric"], metrics["fine_tuned"]["toy_metric"]) == (0.0, 1.0)

    # The deployed model is evaluated from the file it serves, not exported again.
    forge.export()
    forge.deploy()
    toy_settings.eval.gate.reference = "deployed"
    candidate = trained_run(toy_settings, toy_registry, toy_repo, tmp_path / "candidate")
    toy_plugin.calls.clear()
    assert candidate.evaluate().status == "ran"
    assert toy_plugin.calls == ["export", "export"]
    assert not (candidate.run.path / "eval" / "models" / "deployed").exists()
    assert metrics_document(candidate)["metrics"]["deployed"]["toy_metric"] == 1.0
    # A served file that changed since it was deployed is not trusted: exported again
    # from the pinned adapter.
    served = forge.run.path / "export" / "model-Q8_0.gguf"
    served.write_text("GGUF-toy adapter=none")
    toy_plugin.calls.clear()
    assert Forge(toy_settings, tmp_path / "candidate", registry=toy_registry, force=True).evaluate()
    assert toy_plugin.calls == ["export", "export", "export"]
    pinned = toy_settings.runs_dir / "deployed" / "adapter"
    deployed_file = candidate.run.path / "eval" / "models" / "deployed" / "model-Q8_0.gguf"
    assert deployed_file.read_text() == f"GGUF-toy adapter={pinned.resolve()}"
    assert metrics_document(candidate)["metrics"]["deployed"]["toy_metric"] == 1.0
