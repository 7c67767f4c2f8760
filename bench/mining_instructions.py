"""Mining cost in CPU instructions (valgrind's callgrind), against a bare tree-sitter parse.

Wall time on a shared machine drifts by 10-30% between runs; instruction counts do
not (with PYTHONHASHSEED fixed they repeat to the last digit), so this is the
measure to compare two versions of the mining code with. It runs one Python
process per mode under ``valgrind --tool=callgrind`` on a 6 MB slice of the
``bench/mining.py`` corpus (rich, click, requests, django/db, express, cobra):

  setup  imports (every parser plugin's too), plugin registry, walk: what both other
         modes also pay
  bare   setup + read and tree-sitter-parse every file (the bound, as in mining.py)
  mine   setup + the whole ``mine`` stage on one process, parse cache off

and prints each mode's instructions less setup's, and bare / mine, counting the
mine's main thread (the parsing one; its writer thread overlaps it on a second
core) and both threads (what one core would run). Instructions
are not time (tree-sitter's parse runs at a higher rate than Python code, and
valgrind counts SHA-256 without the CPU's SHA instructions), so the ratio is
close to, not equal to, the wall-time ratio of ``bench/mining.py``.

Run: python bench/mining_instructions.py [--data-dir bench/.data]   (about 3 minutes)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from mining import bare_parse_seconds

if TYPE_CHECKING:
    from forge_core.plugins import PluginRegistry
    from forge_core.walk import SourceFile

#: Folders of the mining.py corpus making the slice: Python, JavaScript and Go.
SLICE = {
    "rich-13.9.4": "rich-13.9.4",
    "click-8.1.7": "click-8.1.7",
    "requests-2.32.3": "requests-2.32.3",
    "express-4.21.2": "express-4.21.2",
    "golang-github-spf13-cobra-dev_1.6.1-1_all": "golang-github-spf13-cobra-dev_1.6.1-1_all",
    "Django-5.1.4/Django-5.1.4/django/db": "django/db",
}
MODES = ("setup", "bare", "mine")


def run_mode(mode: str, repo: Path) -> None:
    """The work one valgrind run measures (called in the measured process)."""
    from forge_core.config import ForgeSettings
    from forge_core.contracts import ParseRequest
    from forge_core.pipeline import Forge

    registry, files = _walk(repo)
    bare_parse_seconds([])  # setup: the bare parse's imports and parsers
    for language, (_, spec) in registry.languages().items():
        # Setup imports every parser module and compiles its queries: parse a tiny file.
        request = ParseRequest(path=f"setup{spec.extensions[0]}", language=language, source=b"")
        registry.caller("parse", language)(request)
    if mode == "bare":
        bare_parse_seconds([(source.path, source.language) for source in files])
    elif mode == "mine":
        with tempfile.TemporaryDirectory() as scratch:
            settings = ForgeSettings.model_validate(
                {"runs_dir": scratch, "mine": {"workers": 1, "cache": False}}
            )
            Forge(settings, Path(scratch) / "run", registry=registry).mine(repo)


def _walk(repo: Path) -> tuple[PluginRegistry, list[SourceFile]]:
    """The plugin registry, and the files the walk selects under ``repo``."""
    from forge_core.plugins import PluginRegistry
    from forge_core.walk import walk_repository

    registry = PluginRegistry()
    languages = {name: spec for name, (_, spec) in registry.languages().items()}
    return registry, walk_repository(repo, languages).files


def instructions(mode: str, repo: Path, scratch: Path) -> tuple[int, int]:
    """Instructions callgrind counts for one mode, in a fresh process: those of the
    main thread (which parses), and those of every other thread (the mine's writer)."""
    out = scratch / f"callgrind.{mode}"
    command = ["valgrind", "--tool=callgrind", "--separate-threads=yes"]
    command += [f"--callgrind-out-file={out}", sys.executable]
    command += [__file__, "--measure", mode, "--repo", str(repo)]
    environment = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=environment)
    per_thread = [
        int(found.group(1))
        for thread_file in sorted(scratch.glob(f"callgrind.{mode}-*"))  # -01 is the main thread
        if (found := re.search(r"^summary: (\d+)", thread_file.read_text(), re.MULTILINE))
    ]
    if done.returncode != 0 or not per_thread:
        raise SystemExit(f"valgrind run for {mode!r} failed:\n{done.stderr[-2000:]}")
    return per_thread[0], sum(per_thread[1:])


def make_slice(data: Path, target: Path) -> Path:
    """Copy the slice's folders (the walk skips symlinks that leave the repository)."""
    source = data / "src"
    for name, copy_to in SLICE.items():
        if not (source / name).is_dir():
            raise SystemExit(f"{source / name} is missing: run bench/mining.py once to fetch it")
        shutil.copytree(source / name, target / copy_to)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).parent / ".data")
    parser.add_argument("--measure", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--repo", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        run_mode(args.measure, args.repo)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("needs valgrind (apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        repo = make_slice(args.data_dir, scratch / "slice")
        _, files = _walk(repo)
        megabytes = sum(source.size for source in files) / 1e6
        counts = {mode: instructions(mode, repo, scratch) for mode in MODES}
    setup = counts["setup"][0]
    bare = counts["bare"][0] - setup
    mine, writer = counts["mine"][0] - setup, counts["mine"][1]
    print(f"slice of the mining.py corpus: {len(files)} files, {megabytes:.1f} MB")
    print(f"setup (imports, registry, walk) {setup / 1e9:8.3f} G instructions")
    print(f"bare tree-sitter parse           {bare / 1e9:8.3f} G")
    print(f"forge mine, 1 process            {mine / 1e9:8.3f} G on its main thread")
    print(f"  and its writer thread          {writer / 1e9:8.3f} G (writes and hashes units.jsonl)")
    print(f"bare / mine: {bare / mine:.4f} (wall-time goal in bench/mining.py: at least 0.5)")
    print(f"bare / mine, both threads on one core: {bare / (mine + writer):.4f}")


if __name__ == "__main__":
    main()
