"""A plugin built and pip-installed from a throwaway distribution is found and used.

Two distributions are installed with ``pip install --target`` into a temporary
folder put on ``PYTHONPATH`` of the ``forge`` subprocesses, so the test venv is
never modified: ``forge-hello`` (a language and a synthesizer) and
``forge-broken`` (a plugin whose import fails, which must not break the CLI).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HELLO_PLUGIN = '''
"""A minimal third-party Forge plugin: the `hello` language and synthesizer."""
from forge_core import hookimpl
from forge_core.contracts import (
    ChatMessage, CodeUnit, Example, LanguageSpec, ParseResult, SynthesizeResult, UnitKind,
    UnitQuality,
)


@hookimpl
def register_languages():
    return [LanguageSpec(name="hello", extensions=[".hello"])]


@hookimpl
def parse(request):
    text = request.source.decode()
    return ParseResult(units=[
        CodeUnit(path=request.path, language="hello", kind=UnitKind.FUNCTION, name=word,
                 qualified_name=word, signature=word, source=word, start_line=1, end_line=1,
                 start_byte=0, end_byte=len(word), quality=UnitQuality(lines=1, has_doc=False))
        for word in text.split()
    ])


@hookimpl
def synthesize(request):
    return SynthesizeResult(examples=[
        Example(id=unit.id, question_type="hello", language="hello", path=unit.path,
                oracle_id=unit.id, messages=[
                    ChatMessage(role="user", content=f"Say {unit.name}"),
                    ChatMessage(role="assistant", content=f"hello {unit.name}")])
        for unit in request.units
    ], stats={"greetings": len(request.units)})
'''


def write_distribution(root: Path, name: str, module: str, code: str) -> Path:
    """A complete plugin project: pyproject with the `forge` entry point, one module."""
    project = root / name
    package = project / module
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "plugin.py").write_text(code)
    entry = module.removeprefix("forge_")
    (project / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [build-system]
            requires = ["setuptools>=70"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "{name}"
            version = "0.3.1"
            dependencies = ["forge-core"]

            [project.entry-points.forge]
            {entry} = "{module}.plugin"
            """
        )
    )
    return project


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("third_party")
    target = root / "site"
    projects = [
        write_distribution(root, "forge-hello", "forge_hello", HELLO_PLUGIN),
        write_distribution(root, "forge-broken", "forge_broken", "import no_such_module\n"),
    ]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            *map(str, projects),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return target


def forge(plugin_path: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(plugin_path)}
    command = [str(Path(sys.executable).parent / "forge"), *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_installed_plugin_is_listed(plugin_path: Path, tmp_path: Path) -> None:
    result = forge(plugin_path, tmp_path, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    plugins = {entry["name"]: entry for entry in json.loads(result.stdout)}
    hello = plugins["hello"]
    assert hello["distribution"] == "forge-hello" and hello["version"] == "0.3.1"
    assert hello["status"] == "loaded"
    assert set(hello["hooks"]) == {"parse", "register_languages", "synthesize"}
    assert hello["provides"] == {"parse": ["hello"], "synthesize": ["hello"]}
    broken = plugins["broken"]
    assert broken["status"] == "failed" and "no_such_module" in broken["error"]


def test_pipeline_calls_the_selected_plugin(plugin_path: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "greetings.hello").write_text("world forge\n")
    run_dir = tmp_path / "run"
    mined = forge(plugin_path, tmp_path, "mine", str(repo), "--run-dir", str(run_dir))
    assert mined.returncode == 0, mined.stderr
    synth = forge(
        plugin_path,
        tmp_path,
        "synth",
        "--run-dir",
        str(run_dir),
        "--set",
        "synth.synthesizer=hello",
    )
    assert synth.returncode == 0, synth.stderr
    lines = (run_dir / "synth" / "examples.jsonl").read_text().splitlines()
    answers = [json.loads(line)["messages"][-1]["content"] for line in lines]
    assert answers == ["hello world", "hello forge"]
    manifest = json.loads((run_dir / "synth" / "manifest.json").read_text())
    assert manifest["plugins"] == {"hello": "0.3.1"}
    assert manifest["metrics"]["greetings"] == 2


def test_disabled_plugin_is_not_used(plugin_path: Path, tmp_path: Path) -> None:
    (tmp_path / "forge.toml").write_text("[plugins]\ndisabled = ['hello']\n")
    result = forge(plugin_path, tmp_path, "plugins", "--json")
    plugins = {entry["name"]: entry for entry in json.loads(result.stdout)}
    assert plugins["hello"]["status"] == "disabled"
