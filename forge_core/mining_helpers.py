"""Mining on several processes: this one and spawned helper processes.

Files are cut into chunks. Each helper is kept :data:`PREFETCH` chunks ahead, and
this process mines the next unassigned chunk itself, file by file, looking at the
helpers' pipes between files: a helper that finishes gets its next chunk at once,
with no pool thread in this process competing for the GIL. The outcomes come back
in chunk order, so ``units.jsonl`` is the same whatever the number of processes.

Helpers are spawned (never forked: the CLI and the server run threads), build their
own plugin registry, and send each file's units back as JSON lines.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import pickle
import signal
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forge_core.mining import FileOutcome
    from forge_core.walk import SourceFile

__all__ = ["HelperFailed", "mine_shared"]

#: Chunks a helper holds at a time: one to work on, one ready for when it is done.
PREFETCH = 2
#: Chunks mined ahead of the next one in order, at most (bounds what waits in memory).
MAX_AHEAD = 64
#: Seconds a helper gets to stop before it is terminated.
STOP_SECONDS = 5.0
#: What a helper sends once it is set up, before its first result.
READY = "ready"


class HelperFailed(RuntimeError):
    """A helper process failed or exited while mining."""


@dataclass
class _Helper:
    process: BaseProcess
    conn: Connection
    assigned: deque[int] = field(default_factory=deque)
    """Indices of the chunks sent and not yet back, oldest first."""
    ready: bool = False
    """It has started: imported what it needs and built its plugin registry."""


def _helper_main(
    conn: Connection, tags: dict[str, str], disabled: list[str], cache_folder: str | None
) -> None:
    """A helper's life: mine each chunk it is sent, send the outcomes back, until None."""
    from pathlib import Path

    from forge_core.mining import ParseCache, mine_file
    from forge_core.plugins import PluginRegistry

    # Ctrl-C is the main process's to handle: it stops the helpers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.disable()  # as in the main process: long-lived units, collections only cost time
    registry = PluginRegistry(disabled=disabled)
    cache = ParseCache(Path(cache_folder) if cache_folder else None)
    callers = {language: registry.caller("parse", language) for language in tags}
    conn.send(READY)
    while True:
        try:
            message = conn.recv()
        except EOFError:  # the main process is gone: nobody to mine for
            return
        if message is None:
            return
        index, chunk = message
        try:
            outcomes = []
            for source in chunk:
                language = source.language
                outcome = mine_file(source, callers[language], tags[language], cache)
                outcome.serialise()
                outcomes.append(outcome)
            conn.send((index, outcomes, None))
        except BaseException as exc:  # sent back, raised by the main process
            conn.send((index, None, _portable(exc)))


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a HelperFailed carrying its traceback."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        text = "".join(traceback.format_exception(exc))
        return HelperFailed(f"a mining helper failed:\n{text}")
    return exc


def mine_shared(
    chunks: list[list[SourceFile]],
    tags: dict[str, str],
    mine_here: Callable[[SourceFile], FileOutcome],
    *,
    helpers: int,
    disabled: list[str],
    cache_folder: str | None,
) -> Iterator[list[FileOutcome]]:
    """Each chunk's outcomes, in order, mined by this process and ``helpers`` others."""
    context = multiprocessing.get_context("spawn")
    started: list[_Helper] = []
    completed = False
    try:
        for _ in range(helpers):
            ours, theirs = context.Pipe()
            process = context.Process(
                target=_helper_main, args=(theirs, tags, disabled, cache_folder), daemon=True
            )
            process.start()
            theirs.close()
            started.append(_Helper(process, ours))
        yield from _Schedule(chunks, mine_here, started).run()
        completed = True
    finally:
        _stop(started, graceful=completed)


class _Schedule:
    """Who mines which chunk, and the outcomes back in order."""

    def __init__(
        self,
        chunks: list[list[SourceFile]],
        mine_here: Callable[[SourceFile], FileOutcome],
        helpers: list[_Helper],
    ) -> None:
        self.chunks = chunks
        self.mine_here = mine_here
        self.helpers = helpers
        self.next_to_assign = 0
        self.finished: dict[int, list[FileOutcome]] = {}

    def run(self) -> Iterator[list[FileOutcome]]:
        for helper in self.helpers:
            self._top_up(helper)
        next_out = 0
        while next_out < len(self.chunks):
            self._collect(block=False)
            while next_out in self.finished:
                yield self.finished.pop(next_out)
                next_out += 1
            if next_out >= len(self.chunks):
                break
            if self.next_to_assign < len(self.chunks) and len(self.finished) < MAX_AHEAD:
                index = self.next_to_assign
                self.next_to_assign += 1
                self.finished[index] = self._mine_chunk_here(self.chunks[index])
            else:  # everything is assigned (or far ahead): wait for the helpers
                self._collect(block=True)

    def _mine_chunk_here(self, chunk: list[SourceFile]) -> list[FileOutcome]:
        outcomes = []
        for source in chunk:
            outcomes.append(self.mine_here(source))
            self._collect(block=False)  # a helper that is done gets its next chunk now
        return outcomes

    def _top_up(self, helper: _Helper) -> None:
        while len(helper.assigned) < PREFETCH and self.next_to_assign < len(self.chunks):
            index = self.next_to_assign
            self.next_to_assign += 1
            helper.conn.send((index, self.chunks[index]))
            helper.assigned.append(index)

    def _collect(self, *, block: bool) -> None:
        """Take in every result the helpers have sent (waiting for one if ``block``)."""
        busy = [helper for helper in self.helpers if helper.assigned]
        if not busy:
            if block:
                raise HelperFailed("mining stalled: no chunk left with a helper")
            return
        ready = wait([h.conn for h in busy], timeout=None if block else 0)
        for helper in busy:
            if helper.conn in ready:
                self._receive(helper)

    def _receive(self, helper: _Helper) -> None:
        try:
            message = helper.conn.recv()
        except (EOFError, OSError) as exc:
            helper.process.join(timeout=1)
            raise self._failure(helper) from exc
        if message == READY:
            helper.ready = True
            return
        index, outcomes, error = message
        if error is not None:
            raise error
        helper.assigned.remove(index)
        self.finished[index] = outcomes
        self._top_up(helper)

    def _failure(self, helper: _Helper) -> HelperFailed:
        """What to say of a helper that exited: at start-up, or with files to parse."""
        code = helper.process.exitcode
        if not helper.ready:
            return HelperFailed(
                f"a mining helper process exited (exit code {code}) before it was ready to "
                "mine; its error is printed above. Helpers are spawned: each imports the "
                "main script again, so a script that mines with several processes must "
                'start them from `if __name__ == "__main__":`. Or set mine.workers = 1 '
                "to mine in this process alone"
            )
        files = [s.relative for i in helper.assigned for s in self.chunks[i]]
        return HelperFailed(
            f"a mining helper process exited (exit code {code}) while parsing one of "
            f"{files[:5]}{' …' if len(files) > 5 else ''}; run with mine.workers = 1 to "
            "parse them in this process and see the error"
        )


def _stop(helpers: list[_Helper], *, graceful: bool) -> None:
    """Ask every helper to stop (or, after a failure, stop it), then make sure it has."""
    for helper in helpers:
        if not graceful:
            helper.process.terminate()  # it may be mid-chunk, or blocked sending to us
            continue
        with contextlib.suppress(OSError):  # already gone
            helper.conn.send(None)
    for helper in helpers:
        helper.process.join(timeout=STOP_SECONDS)
        if helper.process.is_alive():
            helper.process.terminate()
            helper.process.join(timeout=STOP_SECONDS)
        helper.conn.close()
