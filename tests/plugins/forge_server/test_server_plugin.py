"""The plugin: it adds ``forge serve`` and costs the CLI nothing until the command runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

FORGE = str(Path(sys.executable).parent / "forge")


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FORGE_")} | env
    return subprocess.run(args, capture_output=True, text=True, timeout=60, env=environ)


def test_the_plugin_contributes_forge_serve() -> None:
    listing = run(FORGE, "plugins", "--json")
    assert listing.returncode == 0, listing.stderr
    server = {entry["name"]: entry for entry in json.loads(listing.stdout)}["server"]
    assert server["status"] == "loaded" and server["distribution"] == "forge-server"
    assert server["hooks"] == ["register_cli_commands"]
    helped = run(FORGE, "serve", "--help")
    assert helped.returncode == 0 and "--allow-root" in helped.stdout


def test_importing_the_plugin_loads_no_web_stack_and_the_app_no_torch() -> None:
    code = (
        "import sys, forge_server.plugin\n"
        "assert 'fastapi' not in sys.modules and 'uvicorn' not in sys.modules\n"
        "import forge_server.app, forge_server.worker\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    result = run(sys.executable, "-c", code)
    assert result.returncode == 0, result.stderr


def test_bad_server_settings_are_a_clear_error(tmp_path: Path) -> None:
    result = run(
        FORGE,
        "serve",
        "--runs-dir",
        str(tmp_path),
        FORGE_SERVER_MAX_CONCURRENT_JOBS="0",
    )
    assert result.returncode != 0
    assert "max_concurrent_jobs" in result.stderr and "greater than or equal to 1" in result.stderr
    typo = run(FORGE, "serve", "--runs-dir", str(tmp_path), "--set", "train.rnak=2")
    assert typo.returncode != 0 and "did you mean 'train.rank'" in typo.stderr
    misspelt = run(FORGE, "serve", "--runs-dir", str(tmp_path), FORGE_SERVER_MAX_RETRIS="2")
    assert misspelt.returncode != 0
    assert "FORGE_SERVER_MAX_RETRIS" in misspelt.stderr
    assert "did you mean FORGE_SERVER_MAX_RETRIES" in misspelt.stderr
