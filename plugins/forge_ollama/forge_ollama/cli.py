"""``forge ollama list|rm``: Forge's models in Ollama (named ``forge-…``).

The client (and httpx) loads when a command runs, not when ``forge --help`` lists it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from forge_ollama.modelfile import is_forge_model

if TYPE_CHECKING:
    from forge_ollama.client import Ollama

HOST_HELP = "Ollama server (default: $OLLAMA_HOST, else http://127.0.0.1:11434)."


def _server(host: str | None) -> Ollama:
    from forge_ollama.client import Ollama

    return Ollama(host, timeout=60.0)


@click.group("ollama")
def ollama_group() -> None:
    """List and remove Forge's models in Ollama."""


@ollama_group.command("list")
@click.option("--host", help=HOST_HELP)
@click.option("--all", "show_all", is_flag=True, help="Show every model, not only forge-*.")
def list_models(host: str | None, show_all: bool) -> None:
    """List Forge's models (names starting with forge-)."""
    from forge_ollama.client import OllamaError

    try:
        rows = _server(host).models(forge_only=not show_all)
    except OllamaError as exc:
        raise click.ClickException(str(exc)) from exc
    if not rows:
        click.echo(
            "no Forge models in Ollama; deploy one with `forge deploy --set deploy.target=ollama`"
        )
        return
    width = max(len(row["name"]) for row in rows)
    for row in rows:
        size = f"{row['size'] / 1e6:,.1f} MB" if row["size"] else "?"
        click.echo(f"{row['name']:<{width}}  {size:>12}  {row['modified_at']}")


@ollama_group.command("rm")
@click.argument("names", nargs=-1)
@click.option("--all", "remove_all", is_flag=True, help="Remove every forge-* model.")
@click.option("--host", help=HOST_HELP)
@click.option("-y", "--yes", is_flag=True, help="Do not ask before removing with --all.")
def remove_models(names: tuple[str, ...], remove_all: bool, host: str | None, yes: bool) -> None:
    """Remove Forge models by name (only forge-* models can be removed here)."""
    from forge_ollama.client import OllamaError

    server = _server(host)
    try:
        targets = list(names)
        if remove_all:
            targets += [row["name"] for row in server.models()]
            if targets and not yes:
                click.confirm(f"remove {', '.join(targets)}?", abort=True)
        if not targets:
            raise click.UsageError("name the models to remove, or pass --all")
        for name in dict.fromkeys(targets):
            if not is_forge_model(name):
                raise click.UsageError(
                    f"{name!r} is not a Forge model (forge-*); remove it with `ollama rm`"
                )
            server.remove(name)
            click.echo(f"removed {name}")
    except OllamaError as exc:
        raise click.ClickException(str(exc)) from exc
