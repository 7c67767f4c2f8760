"""ForgeSettings: layering and misspelt keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from forge_core.config import ConfigError, ForgeSettings, load_settings, parse_overrides


def test_defaults_validate_and_forbid_extras() -> None:
    settings = ForgeSettings()
    assert settings.train.method == "pissa"
    with pytest.raises(ValueError, match="lerning_rate"):
        ForgeSettings.model_validate({"train": {"lerning_rate": 1}})


def test_layers_in_precedence_order(tmp_path: Path) -> None:
    (tmp_path / "forge.toml").write_text("[train]\nrank = 4\nalpha = 8\nepochs = 2\n")
    environ = {"FORGE_TRAIN__ALPHA": "12", "FORGE_TRAIN__EPOCHS": "3"}
    base = {"train": {"rank": 2, "dropout": 0.1, "alpha": 1}}
    settings = load_settings(
        repo=tmp_path, overrides=["train.epochs=5"], base=base, environ=environ
    )
    assert settings.train.dropout == 0.1  # run config.json
    assert settings.train.rank == 4  # forge.toml beats config.json
    assert settings.train.alpha == 12  # FORGE_* beats forge.toml
    assert settings.train.epochs == 5  # --set beats everything


def test_pyproject_tool_forge_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[project]\nname='x'\n[tool.forge.synth]\ndistractors = 5\n"
    )
    assert load_settings(repo=tmp_path, environ={}).synth.distractors == 5


def test_misspelt_key_in_file_names_key_and_file(tmp_path: Path) -> None:
    (tmp_path / "forge.toml").write_text("[train]\nlerning_rate = 0.1\n")
    with pytest.raises(ConfigError) as info:
        load_settings(repo=tmp_path, environ={})
    message = str(info.value)
    assert "forge.toml" in message and "'train.lerning_rate'" in message
    assert "did you mean 'train.learning_rate'" in message


def test_misspelt_environment_variable_names_it() -> None:
    with pytest.raises(ConfigError, match=r"FORGE_TRIAN__RANK.*'trian'.*did you mean 'train'"):
        load_settings(environ={"FORGE_TRIAN__RANK": "3"})


def test_misspelt_set_key_names_it() -> None:
    with pytest.raises(ConfigError, match=r"--set: unknown setting 'eval.gate.max_regresion'"):
        load_settings(overrides=["eval.gate.max_regresion=0.1"], environ={})


def test_bad_value_names_field() -> None:
    with pytest.raises(ConfigError, match=r"train.rank: Input should be greater than 0"):
        load_settings(overrides=["train.rank=0"], environ={})


def test_override_values_are_toml() -> None:
    parsed = parse_overrides(["a.b=3", "a.c=true", "a.d=['x', 'y']", "e=plain text"])
    assert parsed == {"a": {"b": 3, "c": True, "d": ["x", "y"]}, "e": "plain text"}
    with pytest.raises(ConfigError, match=r"expected section.key=value"):
        parse_overrides(["novalue"])


def test_invalid_toml_is_reported(tmp_path: Path) -> None:
    (tmp_path / "forge.toml").write_text("[train\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings(repo=tmp_path, environ={})


def test_reserved_env_and_other_prefixes_ignored(tmp_path: Path) -> None:
    (tmp_path / "x.toml").write_text("[deploy]\nport = 9000\n")
    settings = load_settings(
        environ={"FORGE_CONFIG": "ignored", "FORGEX": "1"}, config_file=tmp_path / "x.toml"
    )
    assert settings.deploy.port == 9000


def test_other_components_env_prefixes_are_not_settings() -> None:
    settings = load_settings(environ={"FORGE_SERVER_API_KEYS": "secret", "FORGE_TRAIN__RANK": "4"})
    assert settings.train.rank == 4
