"""The hook implementations, alone and through the core's plugin registry."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

from forge_core.contracts import LanguageSpec, ParseRequest, ParseResult
from forge_core.plugins import PluginRegistry
from forge_javascript import plugin


def test_register_languages() -> None:
    assert plugin.register_languages() == [
        LanguageSpec(name="javascript", extensions=[".js", ".mjs", ".cjs", ".jsx"])
    ]


def test_parse_answers_only_javascript() -> None:
    other = ParseRequest(path="a.py", language="python", source=b"def f(): pass\n")
    assert plugin.parse(request=other) is None
    mine = ParseRequest(path="a.js", language="javascript", source=b"function f() {}\n")
    result = plugin.parse(request=mine)
    assert isinstance(result, ParseResult) and [u.name for u in result.units] == ["f"]
    assert ParseResult.model_validate_json(result.model_dump_json()) == result


def test_entry_point_is_declared() -> None:
    (point,) = [p for p in entry_points(group="forge") if p.name == "javascript"]
    assert point.value == "forge_javascript.plugin"
    assert point.load() is plugin


def test_registry_routes_extensions_and_calls_parse() -> None:
    registry = PluginRegistry(entry_points=False)
    registry.register(plugin, "javascript")
    languages = registry.languages()
    assert languages["javascript"][1].extensions == [".js", ".mjs", ".cjs", ".jsx"]
    assert registry.find("parse", "javascript") == "javascript"
    request = ParseRequest(path="m.mjs", language="javascript", source=b"export const f = () => 1;")
    result = registry.call("parse", "javascript", request=request)
    assert [u.qualified_name for u in result.units] == ["f"]


def test_plugin_import_stays_light() -> None:
    code = (
        "import sys, forge_javascript.plugin; "
        "sys.exit('tree_sitter' in sys.modules or 'forge_javascript.parser' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
