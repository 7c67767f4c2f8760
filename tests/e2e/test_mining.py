"""`forge mine` with the real language plugins: all three languages, parallel = sequential."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from forge_core.config import ForgeSettings
from forge_core.contracts import CodeUnit
from forge_core.files import read_jsonl
from forge_core.pipeline import Forge
from forge_core.plugins import PluginRegistry

pytest.importorskip("forge_python")
pytest.importorskip("forge_javascript")
pytest.importorskip("forge_go")


def mine(repo: Path, tmp_path: Path, name: str, **mine_settings: object) -> Forge:
    settings = ForgeSettings.model_validate(
        {"runs_dir": str(tmp_path / "runs"), "mine": mine_settings}
    )
    forge = Forge(settings, tmp_path / name, registry=PluginRegistry())
    assert forge.mine(repo).status == "ran"
    return forge


def test_three_languages_sequential_equals_parallel(sample_repo: Path, tmp_path: Path) -> None:
    one = mine(sample_repo, tmp_path, "one", workers=1, cache=False)
    two = mine(sample_repo, tmp_path, "two", workers=2, cache=False)
    units_one = read_jsonl(one.run.path / "mine" / "units.jsonl", CodeUnit)
    units_two = read_jsonl(two.run.path / "mine" / "units.jsonl", CodeUnit)
    assert units_one == units_two
    report = json.loads((two.run.path / "mine" / "report.json").read_text())
    assert report["workers"] == 2
    assert set(report["units_by_language"]) == {"python", "javascript", "go"}
    ids = {u.id for u in units_one}
    for expected in (
        "inventory/models.py::Item.restock",
        "inventory/pricing.py::apply_discount",
        "web/cart.js::Cart.add",
        "web/api.js::exports.checkout",
        "stock/stock.go::(*Ledger).Withdraw",
        "stock/stock.go::Ledger.Count",
        "stock/stock.go::Counter",
    ):
        assert expected in ids, expected
    restock = next(u for u in units_one if u.id == "inventory/models.py::Item.restock")
    assert restock.docstring == "Add ``amount`` units to the stock and return the new quantity."
    assert (restock.start_line, restock.end_line) == (17, 22)


def test_remining_unchanged_repo_uses_the_cache(sample_repo: Path, tmp_path: Path) -> None:
    mine(sample_repo, tmp_path, "first")
    (sample_repo / "stock" / "transfer.go").write_text(
        (sample_repo / "stock" / "transfer.go").read_text() + "\n// trailing comment\n"
    )
    second = mine(sample_repo, tmp_path, "second")
    report = json.loads((second.run.path / "mine" / "report.json").read_text())
    assert report["files"] == 8 and report["cached_files"] == 7


def test_bad_files_are_counted_not_fatal(sample_repo: Path, tmp_path: Path) -> None:
    (sample_repo / "broken.py").write_text("def ok():\n    return 1\n\ndef broken(:\n    pass\n")
    (sample_repo / "latin1.py").write_bytes("x = 'caf\xe9'\n".encode("latin-1"))
    (sample_repo / "blob.js").write_bytes(b"\x00\x01binary")
    with open(sample_repo / "bundle.min.js", "wb") as handle:
        handle.truncate(50 * 1024 * 1024)
    os.symlink(sample_repo, sample_repo / "web" / "loop")
    forge = mine(sample_repo, tmp_path, "bad")
    report = json.loads((forge.run.path / "mine" / "report.json").read_text())
    assert report["skipped"]["binary"] == 1
    assert report["skipped"]["not valid UTF-8"] == 1
    assert report["skipped"]["larger than 1000000 bytes (mine.max_file_bytes)"] == 1
    assert report["skipped"]["symlink loop or repeated folder"] == 1
    assert report["files_with_syntax_errors"] == 1
    units = {
        u.qualified_name: u for u in read_jsonl(forge.run.path / "mine" / "units.jsonl", CodeUnit)
    }
    assert units["ok"].quality.has_syntax_error is False


def test_cli_mine_prints_and_writes_report(sample_repo: Path, tmp_path: Path) -> None:
    forge = str(Path(sys.executable).parent / "forge")
    run_dir = tmp_path / "cli-run"
    result = subprocess.run(
        [forge, "mine", str(sample_repo), "--run-dir", str(run_dir)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "mine" in result.stderr and "ran" in result.stderr
    assert (run_dir / "mine" / "manifest.json").exists()
    bad = subprocess.run(
        [forge, "mine", str(tmp_path / "missing")], capture_output=True, text=True, cwd=tmp_path
    )
    assert bad.returncode == 2 and "does not exist" in bad.stderr
