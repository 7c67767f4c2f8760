"""The forge CLI: plugins listing, config show, errors, runs, import cost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from forge_core.cli import main


def test_plugins_json_is_valid_json() -> None:
    result = CliRunner().invoke(main, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert isinstance(data, list)
    for entry in data:
        assert {"name", "version", "distribution", "hooks", "provides", "status"} <= set(entry)


def test_config_show_applies_set_and_rejects_typos(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["config", "show", "--json", "--set", "train.rank=4"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["train"]["rank"] == 4
    bad = CliRunner().invoke(main, ["config", "show", "--set", "train.rnak=4"])
    assert bad.exit_code == 2
    assert (
        "unknown setting 'train.rnak'" in bad.output and "did you mean 'train.rank'" in bad.output
    )


def test_env_typo_fails_any_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FORGE_SYNTH__DISTRACTOR", "2")
    result = CliRunner().invoke(main, ["mine", str(tmp_path)])
    assert result.exit_code == 2
    assert "FORGE_SYNTH__DISTRACTOR" in result.output and "'synth.distractors'" in result.output


def test_forge_toml_typo_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "forge.toml").write_text("[deploy]\ntraget = 'ollama'\n")
    result = CliRunner().invoke(main, ["run", str(tmp_path)])
    assert result.exit_code == 2
    assert "forge.toml" in result.output and "'deploy.traget'" in result.output


def test_stage_without_run_explains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["synth"])
    assert result.exit_code == 2
    assert "no run found" in result.output and "forge run REPO" in result.output


def test_mine_a_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file.txt").write_text("x")
    from forge_core import plugins

    monkeypatch.setattr(
        plugins.PluginRegistry, "languages", lambda self: {"toy": ("toy", _toy_spec())}
    )
    result = CliRunner().invoke(main, ["mine", str(tmp_path / "file.txt")])
    assert result.exit_code == 2
    assert "is not a directory" in result.output


def test_mining_a_missing_repository_makes_no_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed start must not leave an empty run that later commands take as the latest."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["mine", str(tmp_path / "no-such-repo")])
    assert result.exit_code == 2
    assert "does not exist" in result.output
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(runs.iterdir())


def _toy_spec():  # type: ignore[no-untyped-def]
    from forge_core.contracts import LanguageSpec

    return LanguageSpec(name="toy", extensions=[".toy"])


def test_runs_list_and_show(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    CliRunner().invoke(main, ["run", str(tmp_path)])
    listing = CliRunner().invoke(main, ["runs", "list"])
    assert listing.exit_code == 0 and "mine" in listing.output
    assert "deployed:" not in listing.output
    run_id = next((tmp_path / "runs").iterdir()).name
    (tmp_path / "runs" / "deployed.json").write_text(
        json.dumps(
            {
                "run_id": run_id,
                "run_dir": str(tmp_path / "runs" / run_id),
                "target": "llamacpp",
                "model_name": "forge-demo",
                "endpoint": "http://127.0.0.1:8088/v1",
                "base_model": "tinycoder",
                "adapter_dir": str(tmp_path / "runs" / run_id / "train" / "adapter"),
                "model_hash": "0" * 64,
                "deployed_at": "2026-12-06T08:00:00+00:00",
            }
        )
    )
    listing = CliRunner(env={"COLUMNS": "200"}).invoke(main, ["runs", "list"])
    assert listing.exit_code == 0, listing.output
    assert f"deployed: run {run_id} as forge-demo at http://127.0.0.1:8088/v1" in listing.output
    (tmp_path / "runs" / "deployed.json").write_text("{broken")
    listing = CliRunner(env={"COLUMNS": "200"}).invoke(main, ["runs", "list"])
    assert listing.exit_code == 0 and "deployed: unknown" in listing.output, listing.output
    shown = CliRunner().invoke(main, ["runs", "show", run_id, "--json"])
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    assert data["run"].endswith(run_id) and set(data) >= {"mine", "train", "deploy"}


def test_import_forge_core_loads_no_heavy_modules() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import forge_core, forge_core.pipeline"],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {
        line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines()[1:]
    }
    assert "forge_core" in imported
    assert not imported & {"torch", "transformers", "tree_sitter", "numpy"}


def test_stage_details_show_nested_figures_and_the_gate() -> None:
    from forge_core.cli import stage_details

    train = {"steps": 100.0, "final_loss": 3.679177, "real_tokens": 335477.0, "dropped": 0}
    assert stage_details(train) == "steps=100, final_loss=3.679, real_tokens=335477, dropped=0"
    export = {"Q8_0": {"top1_agreement": 0.992188, "mean_kl": 0.000143, "nested": {"x": 1}}}
    assert stage_details(export) == "Q8_0.top1_agreement=0.9922, Q8_0.mean_kl=0.000143"
    evaluation = {
        "base": {"exact_match": 0.0},
        "gate": {"passed": False, "reasons": ["hallucination regressed", "rate above 25%"]},
    }
    assert stage_details(evaluation) == "gate failed: hallucination regressed (+1 more)"
    assert stage_details({"gate": {"passed": True, "reasons": []}}) == "gate passed"
    assert stage_details({f"k{i}": i for i in range(10)}).count("=") == 6
    validate = {"kept": 7, "rejected": {"length: too many tokens": 5, "secret: key": 1}}
    assert stage_details(validate) == "kept=7, rejected=6"
