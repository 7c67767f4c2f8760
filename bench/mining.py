"""Mining throughput on real repositories nobody here wrote, against a bare tree-sitter parse.

Corpora (fetched once into bench/.data/, which git ignores):
  Python sdists from PyPI   pip download --no-deps --no-binary :all: <pkg>
  npm packages              npm pack <pkg>
  Go libraries from Debian  apt-get download golang-github-…-dev && dpkg -x

For the same files, it prints MB/s and units/s of `forge mine` (1 and 2
processes, parse cache off) against the bound of this design: reading each file
and parsing it with tree-sitter, nothing else, on one process. Besides the best
of separate runs, the 1-process ratio is also measured file by file inside one
`forge mine` run (each file parsed bare right after the stage mined it), which a
machine whose speed drifts between runs does not skew.

Run: python bench/mining.py [--data-dir bench/.data] [--repeats 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import statistics
import subprocess
import tarfile
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from forge_core.config import ForgeSettings
from forge_core.pipeline import Forge
from forge_core.plugins import PluginRegistry
from forge_core.progress import SilentProgress
from forge_core.walk import walk_repository

if TYPE_CHECKING:
    from tree_sitter import Parser

PYPI = ["django==5.1.4", "requests==2.32.3", "click==8.1.7", "rich==13.9.4", "attrs==24.2.0"]
NPM = ["lodash@4.17.21", "express@4.21.2", "moment@2.30.1", "async@3.2.6", "commander@12.1.0"]
DEBIAN_GO = [
    "golang-github-spf13-cobra-dev",
    "golang-github-gorilla-mux-dev",
    "golang-github-prometheus-client-golang-dev",
    "golang-github-sirupsen-logrus-dev",
    "golang-github-stretchr-testify-dev",
]


def fetch(data: Path) -> Path:
    """Download and unpack every corpus into ``data/src`` (once); return that folder."""
    source = data / "src"
    if source.is_dir() and any(source.iterdir()):
        return source
    downloads = data / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    run = {"cwd": downloads, "check": True, "capture_output": True}
    subprocess.run(["pip", "download", "--no-deps", "--no-binary", ":all:", *PYPI], **run)  # type: ignore[call-overload]
    subprocess.run(["npm", "pack", *NPM], **run)  # type: ignore[call-overload]
    subprocess.run(["apt-get", "download", *DEBIAN_GO], **run)  # type: ignore[call-overload]
    for archive in sorted(downloads.iterdir()):
        target = source / archive.name.split(".tar")[0].removesuffix(".tgz").removesuffix(".deb")
        target.mkdir(parents=True, exist_ok=True)
        if archive.suffix == ".deb":
            subprocess.run(["dpkg", "-x", str(archive), str(target)], check=True)
        else:
            with tarfile.open(archive) as tar:
                tar.extractall(target, filter="data")
    return source


def bare_parsers() -> dict[str, Parser]:
    """A plain tree-sitter parser per language."""
    import tree_sitter_go
    import tree_sitter_javascript
    import tree_sitter_python
    from tree_sitter import Language, Parser

    return {
        "python": Parser(Language(tree_sitter_python.language())),
        "javascript": Parser(Language(tree_sitter_javascript.language())),
        "go": Parser(Language(tree_sitter_go.language())),
    }


def bare_parse_seconds(
    files: list[tuple[Path, str]], parsers: dict[str, Parser] | None = None
) -> float:
    """Read and tree-sitter-parse every file on one process: the design's bound."""
    parsers = parsers or bare_parsers()
    started = time.perf_counter()
    for path, language in files:
        parsers[language].parse(path.read_bytes())
    return time.perf_counter() - started


class BareParseAfterEachFile(SilentProgress):
    """Progress for ``forge mine`` that parses each file bare right after the stage mined it.

    The two measures then share every moment of a machine whose speed drifts (on a
    shared host it moves by 10-30% within seconds), which comparing the best of
    separate runs does not cancel. Bare parses come second, after the stage has read
    the file: if anything that favours the bare parse, so the ratio is conservative.
    """

    def __init__(self, files: list[tuple[Path, str]]) -> None:
        super().__init__()
        self.files = files
        self.parsers = bare_parsers()
        self.done = 0
        self.bare_seconds = 0.0
        self.inside_seconds = 0.0
        """Time spent in here, bare parses included: not the stage's."""

    def advance(self, task: str, amount: int = 1) -> None:
        entered = time.perf_counter()
        if task == "mining":
            batch = self.files[self.done : self.done + amount]
            self.bare_seconds += bare_parse_seconds(batch, self.parsers)
            self.done += amount
        self.inside_seconds += time.perf_counter() - entered


def interleaved_seconds(repo: Path, files: list[tuple[Path, str]]) -> tuple[float, float]:
    """Seconds of the bare parse and of ``forge mine`` (1 process), file by file in one run."""
    with tempfile.TemporaryDirectory() as scratch:
        settings = ForgeSettings.model_validate(
            {"runs_dir": scratch, "mine": {"workers": 1, "cache": False}}
        )
        progress = BareParseAfterEachFile(files)
        forge = Forge(settings, Path(scratch) / "run", registry=PluginRegistry(), progress=progress)
        started = time.perf_counter()
        forge.mine(repo)
        elapsed = time.perf_counter() - started
    if progress.done != len(files):
        raise RuntimeError(f"the stage mined {progress.done} files, the walk found {len(files)}")
    return progress.bare_seconds, elapsed - progress.inside_seconds


def bare_parse_parallel_seconds(files: list[tuple[Path, str]], workers: int) -> float:
    """The bare parse split over ``workers`` warm processes: how far this machine scales.

    Two vCPUs are not always two cores' worth of parsing (shared caches, memory
    bandwidth, a busy host), so the 2-process goal is read against this.
    """
    shares = [files[i::workers] for i in range(workers)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        list(pool.map(bare_parse_seconds, [share[:20] for share in shares]))  # start, warm
        started = time.perf_counter()
        list(pool.map(bare_parse_seconds, shares))
        return time.perf_counter() - started


def forge_mine_seconds(repo: Path, workers: int) -> tuple[float, int]:
    """Wall time and unit count of the whole `mine` stage, parse cache off."""
    with tempfile.TemporaryDirectory() as scratch:
        settings = ForgeSettings.model_validate(
            {"runs_dir": scratch, "mine": {"workers": workers, "cache": False}}
        )
        forge = Forge(settings, Path(scratch) / "run", registry=PluginRegistry())
        started = time.perf_counter()
        outcome = forge.mine(repo)
        elapsed = time.perf_counter() - started
        assert outcome.manifest is not None
        return elapsed, int(outcome.manifest.metrics["units"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).parent / ".data")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs; best kept")
    args = parser.parse_args()
    if shutil.which("npm") is None or shutil.which("apt-get") is None:
        raise SystemExit("needs npm and apt-get to fetch the corpora")
    repo = fetch(args.data_dir)
    languages = {name: spec for name, (_, spec) in PluginRegistry().languages().items()}
    walk = walk_repository(repo, languages)
    files = [(f.path, f.language) for f in walk.files]
    megabytes = sum(f.size for f in walk.files) / 1e6
    by_language = {lang: sum(1 for _, lg in files if lg == lang) for lang in sorted(languages)}
    print(f"corpus: {repo}: {len(files)} files, {megabytes:.1f} MB, by language {by_language}")
    bare_parse_seconds(files[:50])  # warm the page cache and the grammars
    # Interleaved repeats, best of each: a shared machine's speed drifts between runs.
    # The ratio of each round (bare parse, then the mines right after it) is kept too:
    # a machine whose speed drifts through the runs moves both sides of a round alike.
    bare, bare_two = float("inf"), float("inf")
    mined = {1: (float("inf"), 0), 2: (float("inf"), 0)}
    round_ratios: list[float] = []
    interleaved: list[tuple[float, float]] = []
    for _ in range(args.repeats):
        bare_round = bare_parse_seconds(files)
        bare = min(bare, bare_round)
        bare_two = min(bare_two, bare_parse_parallel_seconds(files, 2))
        for workers in mined:
            seconds, units = forge_mine_seconds(repo, workers)
            mined[workers] = min(mined[workers], (seconds, units))
            if workers == 1:
                round_ratios.append(bare_round / seconds)
        interleaved.append(interleaved_seconds(repo, files))
    rows: list[tuple[str, float, int | None]] = [("bare tree-sitter parse (bound)", bare, None)]
    rows.append(("bare parse, 2 warm processes", bare_two, None))
    for workers, (seconds, units) in mined.items():
        rows.append((f"forge mine, {workers} process{'es' if workers > 1 else ''}", seconds, units))
    print(f"best of {args.repeats} interleaved runs each")
    print(f"{'what':<36}{'seconds':>9}{'MB/s':>8}{'units/s':>10}{'vs bare':>9}")
    for name, elapsed, count in rows:
        units_rate = f"{count / elapsed:>10.0f}" if count else f"{'':>10}"
        ratio = bare / elapsed
        print(f"{name:<36}{elapsed:>9.2f}{megabytes / elapsed:>8.2f}{units_rate}{ratio:>8.2f}x")
    one, two = rows[2][1], rows[3][1]
    print(
        f"2 processes vs 1: {one / two:.2f}x (goal: close to 2x; "
        f"this machine's bare parse scales {bare / bare_two:.2f}x on 2 processes)"
    )
    print(
        f"1 process vs bare parse: {bare / one:.2f} (goal: at least 0.5); round by round: "
        f"median {statistics.median(round_ratios):.2f}, "
        f"{' '.join(f'{ratio:.2f}' for ratio in round_ratios)}"
    )
    file_ratios = [bare_in / mine_in for bare_in, mine_in in interleaved]
    best_bare, best_mine = min(interleaved, key=lambda pair: pair[1])
    print(
        f"1 process vs bare parse, interleaved file by file in one `forge mine` run: "
        f"median {statistics.median(file_ratios):.3f} "
        f"({' '.join(f'{ratio:.3f}' for ratio in file_ratios)}; fastest run: "
        f"bare {best_bare:.2f} s, forge mine {best_mine:.2f} s)"
    )


if __name__ == "__main__":
    main()
