"""Progress reporting: the pipeline reports, the CLI and the server display.

The pipeline only talks to the :class:`Progress` protocol; the CLI passes a
rich progress bar (:mod:`forge_core.console`), the REST server one that
stores progress fields on the job, and embedders whatever they like.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receives progress events from the pipeline."""

    def stage(self, stage: str, message: str) -> None:
        """A stage starts, is skipped, or finishes; ``message`` says which."""
        ...

    def start(self, task: str, total: int | None) -> None:
        """A countable piece of work begins (``total`` None when unknown)."""
        ...

    def advance(self, task: str, amount: int = 1) -> None:
        """``amount`` more items of ``task`` are done."""
        ...

    def finish(self, task: str) -> None:
        """``task`` is done."""
        ...

    def warn(self, message: str) -> None:
        """Something the user should know about, that does not stop the run."""
        ...


class SilentProgress:
    """A :class:`Progress` that records warnings and shows nothing."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.events: list[tuple[str, str]] = []

    def stage(self, stage: str, message: str) -> None:
        self.events.append((stage, message))

    def start(self, task: str, total: int | None) -> None:
        return None

    def advance(self, task: str, amount: int = 1) -> None:
        return None

    def finish(self, task: str) -> None:
        return None

    def warn(self, message: str) -> None:
        self.warnings.append(message)
