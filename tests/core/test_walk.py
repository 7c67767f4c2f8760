"""The repository walk and the mine stage on bad input: clear errors or counted skips."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from forge_core.config import ForgeSettings
from forge_core.contracts import CodeUnit, LanguageSpec
from forge_core.files import read_jsonl
from forge_core.pipeline import Forge
from forge_core.plugins import PluginRegistry
from forge_core.walk import RepositoryError, walk_repository

TOY = {"toy": LanguageSpec(name="toy", extensions=[".toy"])}


def relatives(repo: Path, **kwargs: object) -> list[str]:
    return [f.relative for f in walk_repository(repo, TOY, **kwargs).files]  # type: ignore[arg-type]


def test_not_a_directory_and_missing_path(tmp_path: Path) -> None:
    (tmp_path / "file.toy").write_text("def f\n")
    with pytest.raises(RepositoryError, match="is not a directory"):
        walk_repository(tmp_path / "file.toy", TOY)
    with pytest.raises(RepositoryError, match="does not exist"):
        walk_repository(tmp_path / "nope", TOY)


def test_order_is_sorted_and_vendored_dirs_skipped(tmp_path: Path) -> None:
    for relative in [
        "b/z.toy",
        "a/y.toy",
        "a.toy",
        "node_modules/x.toy",
        ".hidden/h.toy",
        "vendor/v.toy",
    ]:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("def f\n")
    assert relatives(tmp_path) == ["a.toy", "a/y.toy", "b/z.toy"]


def test_gitignore_root_nested_and_exclude(tmp_path: Path) -> None:
    for relative in [
        "keep.toy",
        "gen/out.toy",
        "src/tmp_x.toy",
        "src/ok.toy",
        "src/deep/x.toy",
        "docs/d.toy",
    ]:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("def f\n")
    (tmp_path / ".gitignore").write_text("gen/\n")
    (tmp_path / "src" / ".gitignore").write_text("tmp_*\ndeep/\n")
    walk = walk_repository(tmp_path, TOY, exclude=["docs/"])
    assert [f.relative for f in walk.files] == ["keep.toy", "src/ok.toy"]
    assert walk.skipped["ignored by .gitignore or mine.exclude"] == 1  # src/tmp_x.toy


def test_symlinks_loops_and_escapes(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "a.toy").write_text("def f\n")
    (tmp_path / "outside.toy").write_text("def secret\n")
    os.symlink(repo, repo / "pkg" / "loop")
    os.symlink(tmp_path / "outside.toy", repo / "escape.toy")
    os.symlink(repo / "pkg" / "a.toy", repo / "alias.toy")
    os.symlink(tmp_path / "missing", repo / "broken.toy")
    walk = walk_repository(repo, TOY)
    assert [f.relative for f in walk.files] == ["alias.toy", "pkg/a.toy"]
    assert walk.skipped["symlink outside the repository"] == 1
    assert walk.skipped["symlink loop or repeated folder"] == 1
    assert walk.skipped["broken symlink"] == 1


def test_large_file_skipped_without_reading(tmp_path: Path) -> None:
    big = tmp_path / "generated.toy"
    with open(big, "wb") as handle:
        handle.truncate(50 * 1024 * 1024)  # 50 MB
    walk = walk_repository(tmp_path, TOY)
    assert walk.files == []
    assert walk.skipped == {"larger than 1000000 bytes (mine.max_file_bytes)": 1}


def test_mine_stage_counts_binary_and_undecodable(
    toy_settings: ForgeSettings, toy_registry: PluginRegistry, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "good.toy").write_text("def ok\n")
    (repo / "binary.toy").write_bytes(b"def x\x00\x01\x02")
    (repo / "latin1.toy").write_bytes("def caf\xe9\n".encode("latin-1"))
    forge = Forge(toy_settings, tmp_path / "run", registry=toy_registry)
    assert forge.mine(repo).status == "ran"
    report = json.loads((forge.run.path / "mine" / "report.json").read_text())
    assert report["files"] == 1 and report["units"] == 1
    assert report["skipped"] == {"binary": 1, "not valid UTF-8": 1}
    assert report["skipped_examples"]["binary"] == "binary.toy"


def test_empty_repo_mines_nothing_with_a_warning(
    toy_settings: ForgeSettings, toy_registry: PluginRegistry, tmp_path: Path
) -> None:
    from forge_core.progress import SilentProgress

    (tmp_path / "empty").mkdir()
    progress = SilentProgress()
    forge = Forge(toy_settings, tmp_path / "run", registry=toy_registry, progress=progress)
    assert forge.mine(tmp_path / "empty").status == "ran"
    assert read_jsonl(forge.run.path / "mine" / "units.jsonl", CodeUnit) == []
    assert any("no code units found" in w for w in progress.warnings)


def test_parse_cache_skips_unchanged_files(
    toy_settings: ForgeSettings,
    toy_plugin: object,
    toy_registry: PluginRegistry,
    toy_repo: Path,
    tmp_path: Path,
) -> None:
    Forge(toy_settings, tmp_path / "run1", registry=toy_registry).mine(toy_repo)
    calls = toy_plugin.calls  # type: ignore[attr-defined]
    assert len([c for c in calls if c.startswith("parse:")]) == 6
    (toy_repo / "pkg0" / "mod0.toy").write_text("def changed\n")
    forge = Forge(toy_settings, tmp_path / "run2", registry=toy_registry)
    forge.mine(toy_repo)
    assert [c for c in calls if c.startswith("parse:")][6:] == ["parse:pkg0/mod0.toy"]
    report = json.loads((forge.run.path / "mine" / "report.json").read_text())
    assert report["cached_files"] == 5
    units = read_jsonl(forge.run.path / "mine" / "units.jsonl", CodeUnit)
    assert units[0].name == "changed" and len(units) == 16


def test_extension_of_is_splitext_lowered() -> None:
    import itertools
    import os

    from forge_core.walk import extension_of

    names = [".bashrc", "..py", "A.PY", "a.b.JS", ".a.py", "..a.go", "x..", "noext"]
    names += ["".join(p) for n in range(1, 6) for p in itertools.product(".aB", repeat=n)]
    for name in names:
        assert extension_of(name) == os.path.splitext(name)[1].lower(), name
