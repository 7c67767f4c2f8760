"""ServerSettings from the environment, and requests mapped onto ForgeSettings."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from server_toy import TOY_SETTINGS

from forge_core.config import ForgeSettings
from forge_server.jobspec import JobSpecError, resolve_settings, retrain_settings
from forge_server.schemas import FineTuneRequest
from forge_server.settings import ServerSettings, forge_environment, worker_environment


def test_env_prefix_lists_and_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FORGE_SERVER_API_KEYS", "alpha-key-1,beta-key-22")
    monkeypatch.setenv("FORGE_SERVER_ALLOWED_ROOTS", f'["{tmp_path}"]')
    monkeypatch.setenv("FORGE_SERVER_MAX_CONCURRENT_JOBS", "3")
    settings = ServerSettings()
    assert settings.all_api_keys() == [b"alpha-key-1", b"beta-key-22"]
    assert settings.allowed_roots == [tmp_path]
    assert settings.max_concurrent_jobs == 3
    assert settings.host == "127.0.0.1"
    assert "alpha-key-1" not in repr(settings) and "alpha-key-1" not in str(settings)


def test_unknown_settings_and_weak_keys_are_refused() -> None:
    with pytest.raises(ValidationError, match="extra"):
        ServerSettings(max_jobs=3)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="8 non-blank"):
        ServerSettings(api_keys=["short"])  # type: ignore[list-item]


def test_api_key_file(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("# team keys\nfile-key-0001\n\n")
    settings = ServerSettings(api_key_file=keys, api_keys=["inline-key-01"])  # type: ignore[list-item]
    assert settings.all_api_keys() == [b"inline-key-01", b"file-key-0001"]


def test_workers_get_no_forge_settings_and_no_keys() -> None:
    environ = {
        "FORGE_SERVER_API_KEYS": "secret-secret",
        "FORGE_TRAIN__RANK": "2",
        "FORGE_CONFIG": "/x.toml",
        "SERVER_TOY_STEP_SECONDS": "1",
        "PATH": "/bin",
    }
    assert worker_environment(environ) == {"SERVER_TOY_STEP_SECONDS": "1", "PATH": "/bin"}
    assert "FORGE_SERVER_API_KEYS" not in forge_environment(environ)
    assert forge_environment(environ)["FORGE_TRAIN__RANK"] == "2"


def resolve(base: ForgeSettings | None = None, **body: object) -> ForgeSettings:
    base = base or ForgeSettings.model_validate(TOY_SETTINGS)
    return resolve_settings(base, FineTuneRequest.model_validate(body), Path("/srv/runs"))


def test_request_fields_land_in_their_sections() -> None:
    settings = resolve(
        repository="r",
        base_model="toybase",
        method="qlora",
        model_name="team-model",
        hyperparameters={"rank": 8, "learning_rate": 1e-4, "max_steps": 5},
        settings={"eval": {"max_samples": 3}, "export": {"quantizations": ["Q4_K_M"]}},
    )
    assert settings.train.method == "lora" and settings.train.quantize_4bit
    assert settings.train.rank == 8 and settings.train.max_steps == 5
    assert settings.train.trainer == "toy"  # the server's choice stays
    assert settings.train.base_model == "toybase"
    assert settings.eval.max_samples == 3 and settings.eval.backend == "toy"
    assert settings.export.quantizations == ["Q4_K_M"]
    assert settings.deploy.model_name == "team-model"
    assert settings.runs_dir == Path("/srv/runs")
    assert resolve(repository="r").train.method == "pissa"


def test_server_environment_cannot_change_a_request(monkeypatch: pytest.MonkeyPatch) -> None:
    base = ForgeSettings.model_validate(TOY_SETTINGS)  # the server's defaults, resolved once
    monkeypatch.setenv("FORGE_TRAIN__RANK", "2")
    monkeypatch.setenv("FORGE_EVAL__MAX_SAMPLES", "1")
    settings = resolve(base, repository="r", hyperparameters={"rank": 8})
    assert settings.train.rank == 8 and settings.eval.max_samples is None


def test_errors_point_into_the_request() -> None:
    with pytest.raises(JobSpecError) as caught:
        resolve(repository="r", hyperparameters={"rank": -1, "epoks": 1})
    locations = [tuple(d["loc"]) for d in caught.value.details]
    assert ("body", "hyperparameters", "epoks") in locations
    with pytest.raises(JobSpecError) as caught:
        resolve(repository="r", hyperparameters={"rank": -1})
    assert caught.value.details[0]["loc"] == ["body", "hyperparameters", "rank"]


def test_retrain_enforces_the_gate() -> None:
    config = resolve(
        repository="r", settings={"deploy": {"force": True}, "eval": {"gate": {"enabled": False}}}
    ).model_dump(mode="json")
    base = ForgeSettings.model_validate(TOY_SETTINGS)
    settings = retrain_settings(config, base, Path("/srv/runs"))
    assert settings.eval.gate.enabled and not settings.deploy.force
    assert settings.train.trainer == "toy"


def test_retrain_takes_operator_keys_from_the_server_not_the_earlier_job() -> None:
    # A job accepted before these keys were the operator's kept what its request set.
    config = resolve(repository="r", base_model="toybase", method="lora").model_dump(mode="json")
    config["export"]["fidelity_file"] = "/srv/secrets/keys.txt"
    config["deploy"].update(target="ollama", ollama_host="http://attacker:11434", host="0.0.0.0")
    config["synth"]["teacher"]["base_url"] = "http://attacker/v1"
    settings = retrain_settings(config, ForgeSettings.model_validate(TOY_SETTINGS), Path("/r"))
    assert settings.export.fidelity_file is None
    assert settings.deploy.target == "toy" and settings.deploy.ollama_host is None
    assert settings.deploy.host == "127.0.0.1"
    assert settings.synth.teacher.base_url == "http://127.0.0.1:11434/v1"
    # what the earlier request chose through its own fields stays
    assert settings.train.base_model == "toybase" and settings.train.method == "lora"
