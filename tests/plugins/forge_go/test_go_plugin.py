"""forge-go: the hook implementations, the entry point and the plugin registry."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

from forge_core.contracts import LanguageSpec, ParseRequest, ParseResult
from forge_core.plugins import PluginRegistry
from forge_go import plugin
from forge_go.parser import go_parser

SOURCE = b"package p\n\n// F does.\nfunc F() {}\n"


def test_register_languages_declares_go() -> None:
    """Go is parsed from `.go` files."""
    assert plugin.register_languages() == [LanguageSpec(name="go", extensions=[".go"])]


def test_parse_answers_only_for_go() -> None:
    """Another language's file is left to its own plugin."""
    request = ParseRequest(path="a.py", language="python", source=b"def f(): pass\n")
    assert plugin.parse(request) is None


def test_parse_returns_units_for_go() -> None:
    """A Go file comes back as a ParseResult."""
    result = plugin.parse(ParseRequest(path="a.go", language="go", source=SOURCE))
    assert isinstance(result, ParseResult)
    assert [(u.qualified_name, u.docstring) for u in result.units] == [("F", "// F does.")]


def test_registry_routes_go_files_to_the_plugin() -> None:
    """Registered like an installed plugin, it provides `parse go` and the `.go` extension."""
    registry = PluginRegistry(entry_points=False, builtins=False)
    info = registry.register(plugin, "go", distribution="forge-go", version="0.1.0")
    assert info.status == "loaded"
    assert info.hooks == ["parse", "register_languages"]
    assert info.provides == {"parse": ["go"]}
    assert registry.languages()["go"] == ("go", LanguageSpec(name="go", extensions=[".go"]))
    request = ParseRequest(path="a.go", language="go", source=SOURCE)
    result = registry.call("parse", "go", request)
    assert [unit.name for unit in result.units] == ["F"]


def test_entry_point_is_installed() -> None:
    """`pip install -e plugins/forge_go` registers the `go` entry point in the `forge` group."""
    (entry_point,) = metadata.entry_points(group="forge", name="go")
    assert entry_point.value == "forge_go.plugin"
    assert entry_point.dist is not None and entry_point.dist.name == "forge-go"


def test_plugin_import_does_not_load_tree_sitter() -> None:
    """Discovery stays light: tree-sitter is imported on the first parse only."""
    code = "import sys, forge_go.plugin; print('tree_sitter' in sys.modules)"
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "False"


def test_parser_is_built_once_per_process() -> None:
    """The tree-sitter parser is cached and reused for every file."""
    assert go_parser() is go_parser()
