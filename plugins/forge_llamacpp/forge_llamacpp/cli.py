"""``forge llamacpp stop|status``: the llama.cpp server a run's deploy stage started."""

from __future__ import annotations

import json
from pathlib import Path

import click

from forge_llamacpp.server import LlamaCppError, server_status, stop_server

RUN_DIR_HELP = "Run directory (default: the latest run under runs_dir)."


def deploy_folder(run_dir: Path | None) -> Path:
    """The ``deploy/`` folder of the given run, else of the latest run."""
    if run_dir is None:
        from forge_core.config import ConfigError, load_settings
        from forge_core.runs import latest_run

        try:
            runs_dir = load_settings().runs_dir
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc
        latest = latest_run(runs_dir)
        if latest is None:
            raise click.ClickException(f"no run found under {runs_dir}; pass --run-dir")
        run_dir = latest.path
    return run_dir / "deploy"


@click.group("llamacpp")
def llamacpp_group() -> None:
    """Manage the llama.cpp server started by `forge deploy` (deploy.target = llamacpp)."""


@llamacpp_group.command("stop")
@click.option("--run-dir", type=click.Path(path_type=Path, file_okay=False), help=RUN_DIR_HELP)
def stop(run_dir: Path | None) -> None:
    """Stop the run's server (SIGTERM, then SIGKILL)."""
    folder = deploy_folder(run_dir)
    try:
        pid = stop_server(folder)
    except LlamaCppError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"stopped the server (pid {pid})" if pid else f"no server running for {folder}")


@llamacpp_group.command("status")
@click.option("--run-dir", type=click.Path(path_type=Path, file_okay=False), help=RUN_DIR_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(run_dir: Path | None, as_json: bool) -> None:
    """Whether the run's server is running and answering."""
    folder = deploy_folder(run_dir)
    state = server_status(folder)
    if as_json:
        click.echo(json.dumps(state, indent=2))
        return
    if not state["running"]:
        click.echo(f"not running (deploy folder {folder}; log {state['log']})")
        return
    healthy = state.get("healthy")
    health = "" if healthy is None else "answering" if healthy else "not answering"
    click.echo(f"running: pid {state['pid']} {state.get('endpoint', '')} {health}".rstrip())
    click.echo(f"log: {state['log']}")
