"""How fast the CLI answers: `forge --help` and `import forge_core` wall time.

Run: python bench/startup.py  (prints the median of 7 runs of each; goal: --help well under 1 s)
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path


def median_seconds(command: list[str], runs: int = 7) -> float:
    """Median wall time of ``command`` over ``runs`` runs (after one warm-up)."""
    subprocess.run(command, capture_output=True, check=True)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    forge = str(Path(sys.executable).parent / "forge")
    python_only = median_seconds([sys.executable, "-c", "pass"])
    core = median_seconds([sys.executable, "-c", "import forge_core.pipeline"])
    help_time = median_seconds([forge, "--help"])
    print(f"{'what':<32}{'seconds':>10}")
    print(f"{'python -c pass (floor)':<32}{python_only:>10.3f}")
    print(f"{'import forge_core.pipeline':<32}{core:>10.3f}")
    print(f"{'forge --help':<32}{help_time:>10.3f}")
    print(f"forge --help vs the 1 s goal: {help_time / 1.0:.2f}x of the budget")


if __name__ == "__main__":
    main()
