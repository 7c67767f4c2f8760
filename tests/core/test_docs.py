"""docs/plugins.md matches the hookspec docstrings; every hook is documented."""

from __future__ import annotations

from pathlib import Path

from forge_core import hookspecs

ROOT = Path(__file__).resolve().parents[2]


def test_hook_reference_is_current() -> None:
    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    section = text.split("<!-- hook-reference:begin -->\n", 1)[1].split(
        "<!-- hook-reference:end -->"
    )[0]
    assert section == hookspecs.render_hook_reference(), "run python scripts/gen_hook_reference.py"


def test_every_hook_has_a_complete_docstring() -> None:
    for name, doc in hookspecs.hook_docstrings().items():
        for part in ("When:", "Arguments:", "Result:", "First-result:"):
            assert part in doc, f"hook {name} docstring lacks {part!r}"


def test_every_pipeline_hook_is_in_the_specs() -> None:
    assert hookspecs.PIPELINE_HOOKS == (
        "parse",
        "synthesize",
        "init_adapter",
        "train",
        "evaluate",
        "export",
        "deploy",
    )
