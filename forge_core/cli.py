"""The ``forge`` command line: a thin dispatcher over :class:`forge_core.Forge`."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from forge_core import __version__

if TYPE_CHECKING:
    from forge_core.config import ForgeSettings
    from forge_core.pipeline import Forge, StageOutcome
    from forge_core.plugins import PluginRegistry

F = TypeVar("F", bound=Callable[..., Any])

#: Exit code for bad configuration or missing prerequisites (usage-type errors).
EXIT_USAGE = 2


def _known_errors() -> tuple[type[Exception], ...]:
    from forge_core.chat import ChatError
    from forge_core.config import ConfigError
    from forge_core.files import DataFileError
    from forge_core.plugins import PluginConflict, PluginNotFound
    from forge_core.runs import RunError
    from forge_core.walk import RepositoryError

    return (
        ConfigError,
        PluginNotFound,
        PluginConflict,
        RunError,
        RepositoryError,
        DataFileError,
        ChatError,
    )


def friendly_errors(func: F) -> F:
    """Turn Forge's own errors into one clear message and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except _known_errors() as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(EXIT_USAGE)

    return wrapper  # type: ignore[return-value]


def run_options(func: F) -> F:
    """The options every stage command takes."""
    func = click.option(
        "--force", is_flag=True, help="Re-run the stage even when it is up to date."
    )(func)
    func = click.option(
        "--config",
        "config_file",
        type=click.Path(path_type=Path, dir_okay=False),
        help="forge.toml or pyproject.toml to read (default: the repository's, else cwd's).",
    )(func)
    func = click.option(
        "--set",
        "overrides",
        multiple=True,
        metavar="KEY=VALUE",
        help="Override a setting, e.g. --set train.rank=8 (repeatable).",
    )(func)
    func = click.option(
        "--run-dir",
        type=click.Path(path_type=Path, file_okay=False),
        help="Run directory (default: a new runs/<timestamp> for run/mine, else the latest run).",
    )(func)
    return func


def open_forge(
    run_dir: Path | None,
    overrides: tuple[str, ...],
    config_file: Path | None,
    *,
    repo: Path | None = None,
    new_run: bool = False,
    force: bool = False,
) -> Forge:
    """Resolve settings and the run directory, then build the pipeline."""
    from forge_core.config import load_settings
    from forge_core.console import RichProgress
    from forge_core.pipeline import Forge
    from forge_core.runs import RunDir, RunError, latest_run

    if new_run and repo is not None:
        from forge_core.walk import check_repository

        check_repository(repo)  # before a run folder is made for it
    settings = load_settings(repo=repo, config_file=config_file, overrides=overrides)
    if run_dir is None and not new_run:
        latest = latest_run(settings.runs_dir)
        if latest is None:
            raise RunError(
                f"no run found under {settings.runs_dir}; start one with `forge run REPO` "
                "or `forge mine REPO`, or pass --run-dir"
            )
        run_dir = latest.path
        click.secho(f"using the latest run: {run_dir}", fg="cyan", err=True)
    if run_dir is not None:
        run = RunDir(run_dir)
        info = run.read_info()
        saved_repo = Path(info.repo) if info and info.repo else None
        settings = load_settings(
            repo=repo or saved_repo,
            config_file=config_file,
            overrides=overrides,
            base=run.read_config(),
        )
    return Forge(settings, run_dir, progress=RichProgress(), force=force)


#: Figures shown for a stage in the run table, at most.
DETAIL_FIGURES = 6


def stage_details(metrics: dict[str, Any]) -> str:
    """A stage's figures in one line: the gate's verdict alone for eval, counts by reason
    as their total (``rejected=553``), other nested figures by a dotted name
    (``Q8_0.top1_agreement``), numbers to 4 significant digits."""
    gate = metrics.get("gate")
    if isinstance(gate, dict) and "passed" in gate:  # the metric table follows the run table
        reasons = gate.get("reasons") or []
        line = f"gate {'passed' if gate['passed'] else 'failed'}"
        if reasons:
            line += f": {reasons[0]}"
        if len(reasons) > 1:
            line += f" (+{len(reasons) - 1} more)"
        return line
    parts: list[str] = []

    def figure(value: object) -> str:
        if isinstance(value, float):
            return str(int(value)) if value.is_integer() else f"{value:.4g}"
        return str(value)

    for key, value in metrics.items():
        if (
            isinstance(value, dict)
            and value
            and all(
                isinstance(inner, int) and not isinstance(inner, bool) for inner in value.values()
            )
        ):  # counts by reason or kind: their total (the stage's report has the breakdown)
            parts.append(f"{key}={sum(value.values())}")
        elif isinstance(value, dict):
            parts.extend(
                f"{key}.{name}={figure(inner)}"
                for name, inner in value.items()
                if not isinstance(inner, dict | list)
            )
        elif not isinstance(value, list):
            parts.append(f"{key}={figure(value)}")
    return ", ".join(parts[:DETAIL_FIGURES])


def show_outcomes(forge: Forge, outcomes: list[StageOutcome]) -> None:
    """Print a table of what each stage did."""
    from rich.console import Console
    from rich.table import Table

    from forge_core.console import STATUS_STYLE

    table = Table(title=f"run {forge.run.path}")
    table.add_column("stage")
    table.add_column("status")
    table.add_column("details", overflow="fold")
    for outcome in outcomes:
        style = STATUS_STYLE.get(outcome.status, "")
        details = outcome.message
        if outcome.manifest is not None and not details:
            details = stage_details(outcome.manifest.metrics)
        table.add_row(outcome.stage, f"[{style}]{outcome.status}[/]", details)
    Console(stderr=True).print(table)


def run_stage(forge: Forge, name: str, call: Callable[[], StageOutcome]) -> None:
    """Run one stage with the progress display and print its outcome."""
    progress: Any = forge.progress
    with progress:
        outcome = call()
    show_outcomes(forge, [outcome])
    if name == "eval":
        show_metrics(forge)


def show_metrics(forge: Forge) -> None:
    """Print the base vs fine-tuned metric table, when the run has one."""
    path = forge.run.path / "eval" / "metrics.json"
    if path.is_file():
        from rich.console import Console

        from forge_core.report import print_metrics_table

        print_metrics_table(json.loads(path.read_text(encoding="utf-8")), Console(stderr=True))


# --------------------------------------------------------------------------- the group


class ForgeGroup(click.Group):
    """A click group that adds commands contributed by plugins, on demand."""

    def _plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        cached: dict[str, click.Command] | None = ctx.meta.get("forge.plugin_commands")
        if cached is not None:
            return cached
        found: dict[str, click.Command] = {}
        try:
            for plugin, command in load_registry().cli_commands():
                if command.name in self.commands or command.name in found:
                    click.secho(
                        f"warning: plugin {plugin!r} command {command.name!r} clashes; skipped",
                        fg="yellow",
                        err=True,
                    )
                    continue
                if command.name:
                    found[command.name] = command
        except Exception as exc:  # plugin discovery must never break the CLI
            click.secho(f"warning: plugin commands unavailable: {exc}", fg="yellow", err=True)
        ctx.meta["forge.plugin_commands"] = found
        return found

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self._plugin_commands(ctx)])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        return self._plugin_commands(ctx).get(cmd_name)


def load_registry(settings: ForgeSettings | None = None) -> PluginRegistry:
    """The plugin registry, honouring ``plugins.disabled`` from the configuration."""
    from forge_core.config import ConfigError, load_settings
    from forge_core.plugins import PluginRegistry

    if settings is None:
        try:
            settings = load_settings()
        except ConfigError:
            return PluginRegistry()
    return PluginRegistry(disabled=settings.plugins.disabled)


@click.group(cls=ForgeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="forge")
def main() -> None:
    """Fine-tune a code LLM on your own repository, on your own hardware, and serve it.

    `forge run REPO` runs every stage: mine → synth → validate → train → eval →
    export → deploy. Each stage is also a command of its own, working on a run
    directory (runs/<timestamp>).
    """


@main.command()
@click.argument("repo", type=click.Path(path_type=Path))
@run_options
@friendly_errors
def run(
    repo: Path,
    run_dir: Path | None,
    overrides: tuple[str, ...],
    config_file: Path | None,
    force: bool,
) -> None:
    """Run the whole pipeline on REPO."""
    forge = open_forge(run_dir, overrides, config_file, repo=repo, new_run=True, force=force)
    progress: Any = forge.progress
    with progress:
        outcomes = forge.run_all(repo)
    show_outcomes(forge, outcomes)
    show_metrics(forge)
    missing = [o.stage for o in outcomes if o.status == "missing"]
    if any(o.status == "failed" for o in outcomes):
        sys.exit(1)
    if missing:
        click.secho(
            f"pipeline incomplete: {', '.join(missing)} not run (plugins not installed; "
            "see the details above)",
            fg="yellow",
            err=True,
        )


@main.command()
@click.argument("repo", type=click.Path(path_type=Path))
@run_options
@friendly_errors
def mine(
    repo: Path,
    run_dir: Path | None,
    overrides: tuple[str, ...],
    config_file: Path | None,
    force: bool,
) -> None:
    """Mine REPO into code units (mine/units.jsonl)."""
    forge = open_forge(run_dir, overrides, config_file, repo=repo, new_run=True, force=force)
    run_stage(forge, "mine", lambda: forge.mine(repo))


def _stage_command(name: str, method: str, help_text: str) -> click.Command:
    """Build the command of a stage that works on an existing run."""

    @run_options
    @friendly_errors
    def command(
        run_dir: Path | None,
        overrides: tuple[str, ...],
        config_file: Path | None,
        force: bool,
    ) -> None:
        forge = open_forge(run_dir, overrides, config_file, force=force)
        run_stage(forge, name, getattr(forge, method))

    command.__doc__ = help_text
    return click.command(name)(command)


for _name, _method, _help in (
    ("synth", "synth", "Make RAFT training examples from the mined units (synth/)."),
    ("validate", "validate", "Check, deduplicate and split the examples (validate/)."),
    ("train", "train", "Train an adapter on the validated splits (train/)."),
    ("eval", "evaluate", "Compare base and fine-tuned models; apply the quality gate (eval/)."),
    ("export", "export", "Merge the adapter and write GGUF files (export/)."),
    ("deploy", "deploy", "Serve the exported model (deploy/)."),
):
    main.add_command(_stage_command(_name, _method, _help))


@main.command()
@click.option("--run-dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("-m", "--message", help="Ask one question and exit (default: interactive).")
@click.option("--max-tokens", default=256, show_default=True)
@friendly_errors
def chat(run_dir: Path | None, message: str | None, max_tokens: int) -> None:
    """Chat with a run's deployed model (after the system prompt it was trained with)."""
    from forge_core.chat import (
        ChatError,
        check_model_served,
        deployed_system_prompt,
        stream_chat,
        with_system_prompt,
    )

    forge = open_forge(run_dir, (), None)
    deployment = forge.deployment()
    check_model_served(deployment.endpoint, deployment.model_name)
    # Every training example began with this system turn (llama.cpp deployments record it;
    # Ollama's Modelfile applies it itself).
    history = with_system_prompt([], deployed_system_prompt(deployment.details))
    questions = [message] if message else None
    while True:
        if questions is not None:
            if not questions:
                return
            question = questions.pop()
        else:
            try:
                question = click.prompt("you", prompt_suffix="> ")
            except (EOFError, click.Abort):
                return
        history.append({"role": "user", "content": question})
        pieces = []
        try:
            for piece in stream_chat(
                deployment.endpoint, deployment.model_name, history, max_tokens=max_tokens
            ):
                click.echo(piece, nl=False)
                pieces.append(piece)
        except ChatError:
            if pieces:  # the error goes on a line of its own
                click.echo()
            raise
        click.echo()
        history.append({"role": "assistant", "content": "".join(pieces)})


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins(as_json: bool) -> None:
    """List installed plugins, the hooks they implement and the names they provide."""
    registry = load_registry()
    infos = registry.infos()
    if as_json:
        click.echo(json.dumps([info.as_json() for info in infos], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Forge plugins")
    for column in ("name", "version", "distribution", "status", "provides"):
        table.add_column(column, overflow="fold")
    for info in infos:
        provides = "; ".join(f"{hook}: {', '.join(n)}" for hook, n in info.provides.items())
        status = info.status if info.error is None else f"{info.status}: {info.error}"
        table.add_row(info.name, info.version or "", info.distribution or "", status, provides)
    Console().print(table)
    if not infos:
        click.echo("no plugins installed; see README.md for `pip install -e plugins/<name>`")


@main.group()
def config() -> None:
    """Inspect the resolved configuration."""


@config.command("show")
@click.option("--repo", type=click.Path(path_type=Path, file_okay=False))
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of TOML.")
@friendly_errors
def config_show(
    repo: Path | None, config_file: Path | None, overrides: tuple[str, ...], as_json: bool
) -> None:
    """Print the configuration after every layer (defaults, file, FORGE_*, --set)."""
    import tomli_w

    from forge_core.config import load_settings

    settings = load_settings(repo=repo, config_file=config_file, overrides=overrides)
    data = settings.model_dump(mode="json", exclude_none=not as_json)
    click.echo(json.dumps(data, indent=2) if as_json else tomli_w.dumps(data))


@main.group()
def runs() -> None:
    """List and inspect runs."""


@runs.command("list")
@click.option("--runs-dir", type=click.Path(path_type=Path, file_okay=False))
@friendly_errors
def runs_list(runs_dir: Path | None) -> None:
    """List runs with the state of each stage."""
    from rich.console import Console
    from rich.table import Table

    from forge_core.config import load_settings
    from forge_core.deployed import deployment_caption
    from forge_core.runs import STAGES, list_runs

    folder = runs_dir or load_settings().runs_dir
    table = Table(title=f"runs in {folder}", caption=deployment_caption(folder))
    table.add_column("run")
    table.add_column("repo", overflow="fold")
    for stage in STAGES:
        table.add_column(stage)
    marks = {"complete": "[green]✓[/]", "incomplete": "[red]✗[/]", "-": "·"}
    for run in list_runs(folder):
        info = run.read_info()
        states = run.status()
        table.add_row(run.id, info.repo if info else "", *(marks[states[s]] for s in STAGES))
    Console().print(table)


@runs.command("show")
@click.argument("run", type=click.Path(path_type=Path, file_okay=False))
@click.option("--json", "as_json", is_flag=True)
@friendly_errors
def runs_show(run: Path, as_json: bool) -> None:
    """Show a run's stages, manifests and figures."""
    from forge_core.config import load_settings
    from forge_core.runs import STAGES, RunDir, RunError

    path = run if run.exists() else load_settings().runs_dir / run
    if not path.is_dir():
        raise RunError(f"no run at {run}; see `forge runs list`")
    run_dir = RunDir(path)
    info = run_dir.read_info()
    summary: dict[str, Any] = {"run": str(run_dir.path), "repo": info.repo if info else None}
    for stage in STAGES:
        manifest = run_dir.completed(stage)
        summary[stage] = (
            {
                "finished_at": manifest.finished_at.isoformat(),
                "wall_seconds": manifest.wall_seconds,
                "metrics": manifest.metrics,
                "outputs": sorted(manifest.outputs),
            }
            if manifest
            else run_dir.status()[stage]
        )
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
        return
    for key, value in summary.items():
        if isinstance(value, dict):
            metrics = json.dumps(value["metrics"], default=str)
            click.echo(f"{key:>8}: complete in {value['wall_seconds']}s  {metrics[:200]}")
        else:
            click.echo(f"{key:>8}: {value}")
