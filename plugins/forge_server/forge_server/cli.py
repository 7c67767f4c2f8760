"""``forge serve``: run the REST server under uvicorn.

Server settings come from the options, then ``FORGE_SERVER_*`` variables; the jobs'
default Forge settings from ``--config`` / ``forge.toml`` / ``FORGE_*`` / ``--set``,
exactly as for ``forge run``. API keys are never taken on the command line (where
``ps`` would show them): use ``FORGE_SERVER_API_KEYS`` or ``--api-key-file``.

On SIGINT/SIGTERM the server stops taking connections, ends the log streams it is
following, and gives the other requests :data:`GRACEFUL_SHUTDOWN_SECONDS` to finish
before it cancels them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import threading
from pathlib import Path
from typing import Any

import click

#: How long in-flight requests (a streamed chat, say) may run on after a stop signal.
GRACEFUL_SHUTDOWN_SECONDS = 5.0


def run_server(app: Any, stopping: threading.Event, **options: Any) -> bool:
    """Serve ``app`` with uvicorn until a signal; set ``stopping`` as soon as one comes.

    ASGI tells a running request nothing about a shutdown, and uvicorn waits for
    every response to end, so the app's endless streams watch ``stopping`` instead.
    Returns whether the server started.
    """
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, telling the app when it is asked to stop."""

        def handle_exit(self, sig: int, frame: Any) -> None:
            stopping.set()
            super().handle_exit(sig, frame)

    options.setdefault("timeout_graceful_shutdown", GRACEFUL_SHUTDOWN_SECONDS)
    server = Server(uvicorn.Config(app, **options))
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the SIGINT it handled
        server.run()
    return bool(server.started)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@click.command("serve")
@click.option("--host", help="Bind address [default: 127.0.0.1].")
@click.option("--port", type=int, help="Bind port [default: 8000].")
@click.option(
    "--runs-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Job run directories and the queue [default: runs/server].",
)
@click.option(
    "--allow-root",
    "allowed_roots",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="A folder repositories may be in (repeatable).",
)
@click.option("--max-concurrent-jobs", type=int, help="Jobs running at once [default: 1].")
@click.option("--max-retries", type=int, help="Restarts of a job whose worker died [default: 2].")
@click.option(
    "--api-key-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="File with API keys, one per line.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="forge.toml with the jobs' default settings.",
)
@click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a job default."
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="info",
    show_default=True,
)
def serve(
    host: str | None,
    port: int | None,
    runs_dir: Path | None,
    allowed_roots: tuple[Path, ...],
    max_concurrent_jobs: int | None,
    max_retries: int | None,
    api_key_file: Path | None,
    config_file: Path | None,
    overrides: tuple[str, ...],
    log_level: str,
) -> None:
    """Serve the REST API: fine-tune jobs, status, logs, retrain, OpenAI-compatible chat."""
    import logging

    from pydantic import ValidationError

    from forge_core.config import ConfigError, format_validation_error, load_settings
    from forge_server.app import create_app
    from forge_server.settings import ServerSettings, check_environment, forge_environment

    given: dict[str, Any] = {
        "host": host,
        "port": port,
        "runs_dir": runs_dir,
        "allowed_roots": list(allowed_roots) or None,
        "max_concurrent_jobs": max_concurrent_jobs,
        "max_retries": max_retries,
        "api_key_file": api_key_file,
    }
    try:
        check_environment()
        settings = ServerSettings(**{k: v for k, v in given.items() if v is not None})
        forge_settings = load_settings(
            config_file=config_file, overrides=overrides, environ=forge_environment()
        )
        keys = settings.all_api_keys()
    except ValidationError as exc:
        raise click.ClickException(format_validation_error(exc)) from None
    except (ConfigError, OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per proxied chat is noise
    if not keys:
        where = "anyone on this machine" if _loopback(settings.host) else "ANYONE on the network"
        click.secho(
            f"warning: no API keys configured (FORGE_SERVER_API_KEYS); {where} can use the API",
            fg="yellow",
            err=True,
        )
    if not settings.allowed_roots:
        click.secho(
            "warning: no --allow-root given; every fine-tune request will be refused",
            fg="yellow",
            err=True,
        )
    app = create_app(settings, forge_settings)
    click.echo(
        f"forge serve: http://{settings.host}:{settings.port} "
        f"(runs in {settings.runs_dir.resolve()}, {len(keys)} API key(s))",
        err=True,
    )
    started = run_server(
        app,
        app.state.forge.stopping,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        server_header=False,
        proxy_headers=False,
    )
    if not started:
        raise click.ClickException(
            f"the server did not start on {settings.host}:{settings.port} (see the log above)"
        )
