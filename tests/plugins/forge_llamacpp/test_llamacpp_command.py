"""The server command line, read by llama-cpp-python's own argument parser."""

from __future__ import annotations

import argparse
from pathlib import Path

from llama_cpp.server.cli import add_args_from_model, parse_model_from_args
from llama_cpp.server.settings import ModelSettings, ServerSettings, Settings

from forge_llamacpp.server import GGUF_CHAT_FORMAT, server_command


def parsed(command: list[str]) -> tuple[ServerSettings, ModelSettings]:
    parser = argparse.ArgumentParser()
    add_args_from_model(parser, Settings)
    args = parser.parse_args(command[3:])  # after `python -m llama_cpp.server`
    return parse_model_from_args(ServerSettings, args), parse_model_from_args(ModelSettings, args)


def test_the_server_serves_the_gguf_under_its_alias_without_interrupting_answers() -> None:
    server, model = parsed(
        server_command(Path("/m/model.gguf"), "127.0.0.1", 8123, 2048, "forge-a")
    )
    assert (server.host, server.port) == ("127.0.0.1", 8123)
    assert server.interrupt_requests is False  # a new request never cuts a streamed answer
    assert (model.model, model.model_alias, model.n_ctx) == ("/m/model.gguf", "forge-a", 2048)
    assert model.chat_format == GGUF_CHAT_FORMAT
    _, chosen = parsed(server_command(Path("/m/x.gguf"), "0.0.0.0", 1, 512, "b", "chatml"))
    assert chosen.chat_format == "chatml"
