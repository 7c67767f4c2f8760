"""forge-python: the hook implementations, the entry point and the plugin registry."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

from forge_core.contracts import LanguageSpec, ParseRequest, ParseResult
from forge_core.plugins import PluginRegistry
from forge_python import plugin
from forge_python.parser import get_parser

SOURCE = b'def f():\n    """Doc."""\n'
SPEC = LanguageSpec(name="python", extensions=[".py", ".pyi"])


def test_register_languages_declares_python_and_stubs() -> None:
    """Python is parsed from `.py` files and `.pyi` stubs."""
    assert plugin.register_languages() == [SPEC]


def test_parse_answers_only_for_python() -> None:
    """Another language's file is left to its own plugin."""
    request = ParseRequest(path="a.go", language="go", source=b"package p\n")
    assert plugin.parse(request) is None


def test_parse_returns_units_for_python() -> None:
    """A Python file comes back as a ParseResult that survives a JSON round trip."""
    result = plugin.parse(ParseRequest(path="a.py", language="python", source=SOURCE))
    assert isinstance(result, ParseResult)
    assert [(u.qualified_name, u.docstring) for u in result.units] == [("f", "Doc.")]
    assert ParseResult.model_validate_json(result.model_dump_json()) == result


def test_registry_routes_python_files_to_the_plugin() -> None:
    """Registered like an installed plugin, it provides `parse python` and its extensions."""
    registry = PluginRegistry(entry_points=False, builtins=False)
    info = registry.register(plugin, "python", distribution="forge-python", version="0.1.0")
    assert info.status == "loaded"
    assert info.hooks == ["parse", "register_languages"]
    assert info.provides == {"parse": ["python"]}
    assert registry.languages()["python"] == ("python", SPEC)
    request = ParseRequest(path="a.py", language="python", source=SOURCE)
    assert [unit.name for unit in registry.call("parse", "python", request).units] == ["f"]


def test_entry_point_is_installed() -> None:
    """`pip install -e plugins/forge_python` registers `python` in the `forge` group."""
    (entry_point,) = metadata.entry_points(group="forge", name="python")
    assert entry_point.value == "forge_python.plugin"
    assert entry_point.dist is not None and entry_point.dist.name == "forge-python"


def test_plugin_import_does_not_load_tree_sitter() -> None:
    """Discovery stays light: tree-sitter is imported on the first parse only."""
    code = "import sys, forge_python.plugin; print('tree_sitter' in sys.modules)"
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "False"


def test_parser_is_made_once_per_thread() -> None:
    """The tree-sitter parser is cached, not rebuilt for every file."""
    assert get_parser() is get_parser()
