"""Rewrite the hook reference in docs/plugins.md from the hookspec docstrings.

Run: python scripts/gen_hook_reference.py   (tests/core/test_docs.py fails when it is stale)
"""

from __future__ import annotations

from pathlib import Path

from forge_core.hookspecs import render_hook_reference

BEGIN = "<!-- hook-reference:begin -->"
END = "<!-- hook-reference:end -->"


def main() -> None:
    path = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
    text = path.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{render_hook_reference()}{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    main()
