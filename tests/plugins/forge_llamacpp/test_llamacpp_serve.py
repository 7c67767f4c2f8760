"""The served model answers the official openai client and `forge chat`, and can be managed."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from forge_core.cli import main
from forge_core.contracts import DeployResult

Served = tuple[Path, DeployResult]


def test_the_deploy_result_points_at_a_running_server(served: Served) -> None:
    run, result = served
    assert result.target == "llamacpp"
    assert result.endpoint.startswith("http://127.0.0.1:") and result.endpoint.endswith("/v1")
    assert result.pid is not None
    assert Path(result.details["pid_file"]).read_text().strip() == str(result.pid)
    assert Path(result.details["log"]).is_file()
    assert Path(result.details["gguf"]).is_file()
    assert Path(result.details["log"]).parent == run / "deploy"
    assert result.details["chat_format"] == "chat_template.default"
    # no system prompt in the settings (the training examples had none): none to send
    assert result.details["system_prompt"] is None


def test_openai_client_gets_a_chat_completion(served: Served) -> None:
    from openai import OpenAI

    _, result = served
    client = OpenAI(base_url=result.endpoint, api_key="unused")
    assert [m.id for m in client.models.list()] == ["forge-test"]
    answer = client.chat.completions.create(
        model=result.model_name,
        messages=[{"role": "user", "content": "Say hi."}],
        max_tokens=16,
        temperature=0,
    )
    # the GGUF's template ends the prompt with "<|assistant|>\n"; the model says "hi"
    # and its end-of-turn token <|end|> ends the generation (not max_tokens)
    assert answer.choices[0].message.content == "hi"
    assert answer.choices[0].finish_reason == "stop"


def test_openai_client_streams_a_chat_completion(served: Served) -> None:
    from openai import OpenAI

    _, result = served
    client = OpenAI(base_url=result.endpoint, api_key="unused")
    stream = client.chat.completions.create(
        model=result.model_name,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}],
        max_tokens=16,
        temperature=0,
        stream=True,
    )
    pieces, reasons = [], []
    for chunk in stream:
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            reasons.append(choice.finish_reason)
    assert "".join(pieces) == "hi"
    assert reasons[-1] == "stop"


def test_max_tokens_cuts_the_answer(served: Served) -> None:
    from openai import OpenAI

    _, result = served
    client = OpenAI(base_url=result.endpoint, api_key="unused")
    answer = client.chat.completions.create(
        model=result.model_name,
        messages=[{"role": "user", "content": "Say hi."}],
        max_tokens=1,
        temperature=0,
    )
    assert answer.choices[0].message.content == "h"
    assert answer.choices[0].finish_reason == "length"


def test_forge_chat_one_shot(served: Served) -> None:
    run, _ = served
    outcome = CliRunner().invoke(main, ["chat", "--run-dir", str(run), "-m", "Say hi."])
    assert outcome.exit_code == 0, outcome.output
    assert outcome.output.strip().splitlines()[-1] == "hi"


def test_forge_llamacpp_status(served: Served) -> None:
    run, result = served
    outcome = CliRunner().invoke(main, ["llamacpp", "status", "--run-dir", str(run), "--json"])
    assert outcome.exit_code == 0, outcome.output
    state = json.loads(outcome.output)
    assert state["running"] is True
    assert state["healthy"] is True
    assert state["pid"] == result.pid
    assert state["endpoint"] == result.endpoint
