"""Killing a stage half-way leaves no manifest, and the next run redoes the stage."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from forge_core.config import ForgeSettings
    from forge_core.pipeline import Forge
    from forge_core.plugins import PluginRegistry
    from tests.core.toy_plugin import ToyPlugin

    class SlowToy(ToyPlugin):
        def parse(self, request):
            marker = os.environ.get("SLOW_MARKER")
            if marker:
                Path(marker).write_text(request.path)
                time.sleep(120)
            return super().parse(request)

    SlowToy.parse.forge_impl = ToyPlugin.parse.forge_impl
    registry = PluginRegistry(entry_points=False)
    registry.register(SlowToy(), "toy")
    settings = ForgeSettings(runs_dir=Path(sys.argv[2]).parent / "runs")
    outcome = Forge(settings, sys.argv[2], registry=registry).mine(sys.argv[1])
    print(outcome.status)
    """
)


def test_sigkill_during_a_stage_leaves_no_manifest(toy_repo: Path, tmp_path: Path) -> None:
    script = tmp_path / "mine.py"
    script.write_text(SCRIPT)
    run_dir = tmp_path / "run"
    marker = tmp_path / "started"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "SLOW_MARKER": str(marker)}
    process = subprocess.Popen(
        [sys.executable, str(script), str(toy_repo), str(run_dir)], env=env, cwd=root
    )
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the stage never started"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert not (run_dir / "mine" / "manifest.json").exists()
    assert not (run_dir / "mine" / "units.jsonl").exists()

    env.pop("SLOW_MARKER")
    again = subprocess.run(
        [sys.executable, str(script), str(toy_repo), str(run_dir)],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    assert again.stdout.strip() == "ran"
    assert (run_dir / "mine" / "manifest.json").exists()
    assert len((run_dir / "mine" / "units.jsonl").read_text().splitlines()) == 18
