"""Terminal output for the CLI: a rich progress bar and tables (imported lazily)."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

STATUS_STYLE = {"ran": "green", "skipped": "cyan", "missing": "yellow", "failed": "red"}


class RichProgress:
    """Shows pipeline progress as rich bars on stderr."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._bars = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> RichProgress:
        # The live display starts with the first task and stops with the last, so
        # plugins that draw their own bars (the trainer's tqdm) are never garbled.
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._tasks:
            self._tasks.clear()
            self._bars.stop()

    def stage(self, stage: str, message: str) -> None:
        self.console.print(f"[bold blue]{stage:>8}[/] {message}")

    def start(self, task: str, total: int | None) -> None:
        if not self._tasks:
            self._bars.start()
        self._tasks[task] = self._bars.add_task(task, total=total)

    def advance(self, task: str, amount: int = 1) -> None:
        if task in self._tasks:
            self._bars.advance(self._tasks[task], amount)

    def finish(self, task: str) -> None:
        task_id = self._tasks.pop(task, None)
        if task_id is not None:
            self._bars.remove_task(task_id)
            if not self._tasks:
                self._bars.stop()

    def warn(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/] {message}")
