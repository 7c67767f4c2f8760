"""The chat client: server-sent events parsed as the spec says, failed or cut streams are errors,
and "is our model served there?" asks for the model, not just for an answer."""

from __future__ import annotations

import json

import pytest

from forge_core.chat import (
    ChatError,
    check_model_served,
    deployed_system_prompt,
    endpoint_answers,
    served_models,
    stream_chat,
    with_system_prompt,
)
from tests.core.chat_fakes import FakeChatServer, chunk, model_list

QUESTION = [{"role": "user", "content": "What does parse_config return?"}]


def answer(stream: str | bytes, cut_after: int | None = None) -> str:
    """What stream_chat yields, joined, for a server that sends ``stream``."""
    with FakeChatServer(stream, cut_after=cut_after) as server:
        return "".join(stream_chat(server.endpoint, "m", QUESTION))


def test_a_complete_stream_is_the_answer() -> None:
    stream = chunk("The ") + chunk("dict.") + chunk("", "stop") + "data: [DONE]\n\n"
    assert answer(stream) == "The dict."


def test_an_error_event_mid_stream_is_a_chat_error_with_the_servers_message() -> None:
    """As forge-server's relay and llama-cpp-python send it when the model server fails."""
    error = {"error": {"message": "upstream died", "code": "upstream_error"}}
    stream = chunk("The function ") + f"data: {json.dumps(error)}\n\n" + "data: [DONE]\n\n"
    with pytest.raises(ChatError, match="upstream died"):
        answer(stream)
    with pytest.raises(ChatError, match="out of memory"):
        answer(chunk("x") + 'data: {"error": "out of memory"}\n\n')


def test_a_stream_that_ends_without_done_or_finish_reason_is_cut_short() -> None:
    """llama-cpp-python closes the stream without [DONE] when generation raises."""
    with pytest.raises(ChatError, match="the stream ended before the answer was complete"):
        answer(chunk("The function "))
    with pytest.raises(ChatError, match="the stream ended before the answer was complete"):
        answer("")
    # A half-sent event at the end is the same failure, not a JSON error.
    with pytest.raises(ChatError, match="the stream ended before the answer was complete"):
        answer(chunk("The ") + 'data: {"choices": [{"del')


def test_a_finish_reason_without_done_is_a_complete_answer() -> None:
    assert answer(chunk("The dict.") + chunk("", "length")) == "The dict."
    # ... and so is a last event whose blank line never came.
    assert answer(chunk("The dict.") + "data: [DONE]") == "The dict."


def test_multi_line_data_comments_and_crlf_are_parsed_as_server_sent_events() -> None:
    stream = (
        ": a keep-alive comment\r\n"
        "event: message\r\n"
        'data: {"choices": [{"delta":\r\n'
        'data: {"content": "x"}}]}\r\n'
        "\r\n"
        'data:{"choices": [{"delta": {"content": "y"}}]}\n'
        "id: 7\n"
        "\n"
        "data: [DONE]\n\n"
    )
    assert answer(stream) == "xy"


def test_events_that_are_not_json_or_not_chunks_are_chat_errors() -> None:
    with pytest.raises(ChatError, match=r"not a chat chunk: '<html>'$"):
        answer("data: <html>\n\ndata: [DONE]\n\n")
    with pytest.raises(ChatError, match="not a chat chunk"):
        answer("data: [1, 2]\n\ndata: [DONE]\n\n")


def test_a_connection_that_breaks_mid_stream_is_a_chat_error() -> None:
    broke = r"^the stream from http://127\.0\.0\.1:\d+/v1/chat/completions broke before"
    with pytest.raises(ChatError, match=broke + r".*IncompleteRead"):
        answer(chunk("The "), cut_after=100)


def test_served_models_and_endpoint_answers_ask_for_the_model() -> None:
    with FakeChatServer(models=model_list("forge-B", "forge-c:latest")) as server:
        assert served_models(server.endpoint) == ["forge-B", "forge-c:latest"]
        assert endpoint_answers(server.endpoint)  # something answers
        assert endpoint_answers(server.endpoint, "forge-B")
        assert not endpoint_answers(server.endpoint, "forge-A")  # another run's server
        # Ollama lists its models with their tag.
        assert endpoint_answers(server.endpoint, "forge-c")
        assert endpoint_answers(server.endpoint, "forge-c:latest")
        assert not endpoint_answers(server.endpoint, "forge-b")
    with FakeChatServer(models={"models": "not OpenAI's shape"}) as server:
        assert served_models(server.endpoint) is None
        assert endpoint_answers(server.endpoint)
        assert not endpoint_answers(server.endpoint, "forge-B")
    with FakeChatServer(models=None) as server:  # /models is a 404
        assert served_models(server.endpoint) is None
        assert not endpoint_answers(server.endpoint, "forge-B")
    closed = server.endpoint
    assert not endpoint_answers(closed) and not endpoint_answers(closed, "forge-B")


def test_check_model_served_names_the_model_expected_and_what_is_served() -> None:
    with FakeChatServer(models=model_list("forge-B")) as server:
        check_model_served(server.endpoint, "forge-B")
        with pytest.raises(ChatError) as caught:
            check_model_served(server.endpoint, "forge-A")
    message = str(caught.value)
    assert "forge-A" in message and "serves forge-B" in message and server.endpoint in message
    with FakeChatServer(models=model_list()) as server:
        with pytest.raises(ChatError, match="serves no model"):
            check_model_served(server.endpoint, "forge-A")
    # Nothing to judge (no /models, or nothing there): the chat request will say what is wrong.
    with FakeChatServer(models=None) as server:
        check_model_served(server.endpoint, "forge-A")
    check_model_served(server.endpoint, "forge-A")


def test_the_deployed_system_prompt_goes_first_unless_there_is_one() -> None:
    assert deployed_system_prompt({"system_prompt": "You answer questions."}) == (
        "You answer questions."
    )
    assert deployed_system_prompt({}) is None
    assert deployed_system_prompt({"system_prompt": None}) is None
    user = [{"role": "user", "content": "q"}]
    assert with_system_prompt(user, "S") == [{"role": "system", "content": "S"}, *user]
    assert with_system_prompt(user, None) == user
    own = [{"role": "system", "content": "mine"}, *user]
    assert with_system_prompt(own, "S") == own
    developer = [{"role": "developer", "content": "mine"}, *user]
    assert with_system_prompt(developer, "S") == developer
    assert user == [{"role": "user", "content": "q"}]  # not changed in place
