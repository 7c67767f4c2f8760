"""``forge chat``: the deployed system prompt first, a clear error for another model or a
failed stream, and a redeploy when another model took the deployed server's port."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from forge_core.cli import main
from forge_core.config import ForgeSettings
from forge_core.contracts import DeployResult
from forge_core.pipeline import Forge
from forge_core.plugins import PluginRegistry
from forge_core.runs import RunDir
from tests.core.chat_fakes import FakeChatServer, chunk, model_list
from tests.core.toy_plugin import ToyPlugin

ANSWER = chunk("It returns ") + chunk("a dict.", "stop") + "data: [DONE]\n\n"
SYSTEM = "You answer questions about the repository's code."


def deployed_run(folder: Path, endpoint: str, **details: Any) -> Path:
    """A run folder whose deploy stage deployed ``forge-A`` at ``endpoint`` (llamacpp)."""
    deployment = DeployResult(
        target="llamacpp", model_name="forge-A", endpoint=endpoint, pid=4242, details=details
    )
    (folder / "deploy").mkdir(parents=True)
    (folder / "deploy" / "deployment.json").write_text(json.dumps(deployment.model_dump()))
    RunDir(folder).finish(
        "deploy",
        inputs={},
        config={},
        outputs=[folder / "deploy" / "deployment.json"],
        metrics={},
        plugins={},
        started=time.time(),
    )
    return folder


def chat(run: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["chat", "--run-dir", str(run), *args])


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no forge.toml of the checkout


def test_chat_sends_the_deployed_system_prompt_first(tmp_path: Path) -> None:
    with FakeChatServer(ANSWER, models=model_list("forge-A")) as server:
        run = deployed_run(tmp_path / "run", server.endpoint, system_prompt=SYSTEM)
        result = chat(run, "-m", "What does parse_config return?")
    assert result.exit_code == 0, result.output
    assert result.output == "It returns a dict.\n"
    assert server.requests[0]["model"] == "forge-A"
    assert server.requests[0]["messages"] == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "What does parse_config return?"},
    ]


def test_interactive_chat_keeps_the_system_prompt_first_every_turn(tmp_path: Path) -> None:
    with FakeChatServer(ANSWER, models=model_list("forge-A")) as server:
        run = deployed_run(tmp_path / "run", server.endpoint, system_prompt=SYSTEM)
        result = CliRunner().invoke(
            main, ["chat", "--run-dir", str(run)], input="first?\nsecond?\n"
        )
    assert result.exit_code == 0, result.output
    second = server.requests[1]["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert second[0]["content"] == SYSTEM and second[2]["content"] == "It returns a dict."


def test_chat_without_a_recorded_system_prompt_sends_the_words_alone(tmp_path: Path) -> None:
    with FakeChatServer(ANSWER, models=model_list("forge-A:latest")) as server:
        run = deployed_run(tmp_path / "run", server.endpoint, system_prompt=None)
        result = chat(run, "-m", "q")
    assert result.exit_code == 0, result.output
    assert server.requests[0]["messages"] == [{"role": "user", "content": "q"}]


def test_chat_with_another_model_on_the_endpoint_fails_naming_both(tmp_path: Path) -> None:
    """Run A's server is gone and run B's took its port: forge chat must not talk to B."""
    with FakeChatServer(ANSWER, models=model_list("forge-B")) as server:
        run = deployed_run(tmp_path / "run", server.endpoint)
        result = chat(run, "-m", "q")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert f"error: {server.endpoint} serves forge-B, not forge-A" in result.output
    assert server.requests == []  # nothing was asked of forge-B


def test_a_stream_that_fails_mid_answer_is_one_error_line(tmp_path: Path) -> None:
    failed = chunk("It returns ") + 'data: {"error": {"message": "upstream died"}}\n\n'
    with FakeChatServer(failed, models=model_list("forge-A")) as server:
        run = deployed_run(tmp_path / "run", server.endpoint)
        result = chat(run, "-m", "q")
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)  # no traceback
    assert "It returns \nerror: " in result.output and "upstream died" in result.output
    with FakeChatServer(chunk("It returns "), models=model_list("forge-A")) as server:
        run = deployed_run(tmp_path / "cut", server.endpoint)
        result = chat(run, "-m", "q")
    assert result.exit_code == 2
    assert "the stream ended before the answer was complete" in result.output


def test_deploy_runs_again_when_another_model_took_the_servers_port(
    toy_settings: ForgeSettings,
    toy_plugin: ToyPlugin,
    toy_registry: PluginRegistry,
    toy_repo: Path,
    tmp_path: Path,
) -> None:
    """Forge._server_gone asks for the deployed model by name, not just for an answer."""
    with FakeChatServer(models=model_list("forge-run")) as ours:
        toy_plugin.deploy_pid = 4242
        toy_plugin.deploy_endpoint = ours.endpoint
        Forge(toy_settings, tmp_path / "run", registry=toy_registry).run_all(toy_repo)
        again = Forge(toy_settings, tmp_path / "run", registry=toy_registry).deploy()
        assert again.status == "skipped"
    # Another run's server now listens on the deployed server's port.
    with FakeChatServer(models=model_list("forge-other-run"), port=ours.port) as other:
        assert other.endpoint == ours.endpoint
        after = Forge(toy_settings, tmp_path / "run", registry=toy_registry).deploy()
    assert after.status == "ran"
    assert toy_plugin.calls.count("deploy") == 2
