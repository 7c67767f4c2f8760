"""The forge-server plugin: it contributes ``forge serve`` to the CLI, nothing else."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forge_core.hookspecs import hookimpl

if TYPE_CHECKING:
    import click


@hookimpl
def register_cli_commands() -> list[click.Command]:
    """``forge serve``: the REST server (the command imports FastAPI only when run)."""
    from forge_server.cli import serve

    return [serve]
