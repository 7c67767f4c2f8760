"""Plugin registry: selection by name, listing, failures, conflicts."""

from __future__ import annotations

import types

import pytest

from forge_core.hookspecs import hookimpl
from forge_core.plugins import PluginConflict, PluginNotFound, PluginRegistry
from tests.core.toy_plugin import ToyPlugin


def test_listing_shows_hooks_and_names(toy_registry: PluginRegistry) -> None:
    (info,) = [i for i in toy_registry.infos() if i.name == "toy"]
    data = info.as_json()
    assert data["name"] == "toy" and data["version"] == "1.2.3"
    assert data["distribution"] == "toy-dist" and data["status"] == "loaded"
    assert {"parse", "train", "deploy", "register_languages"} <= set(data["hooks"])
    assert data["provides"]["parse"] == ["toy"]
    assert data["provides"]["evaluate"] == ["toy_metric"]
    assert data["provides"]["model_backend"] == ["toy", "toygguf"]
    assert data["provides"]["base_model"] == ["toybase"]


def test_selection_by_name_calls_only_that_plugin(toy_registry: PluginRegistry) -> None:
    second = ToyPlugin()
    module = types.ModuleType("plugin_under_test")

    @hookimpl
    def train(request: object) -> str:
        return "other trainer"

    module.train = train
    toy_registry.register(module, "other")
    assert toy_registry.find("train", "other") == "other"
    assert toy_registry.find("train", "toy") == "toy"
    assert toy_registry.call("train", "other", request=None) == "other trainer"
    assert second.calls == []


def test_missing_name_lists_installed_and_distribution(toy_registry: PluginRegistry) -> None:
    with pytest.raises(PluginNotFound) as info:
        toy_registry.find("train", "torch")
    message = str(info.value)
    assert "installed: toy" in message
    assert "forge-torch" in message and "plugins/forge_torch" in message


def test_conflicting_providers_are_an_error(toy_registry: PluginRegistry) -> None:
    toy_registry.register(ToyPlugin(), "toy2")
    with pytest.raises(PluginConflict, match="toy, toy2"):
        toy_registry.find("deploy", "toy")


def test_disabled_plugin_is_listed_not_used() -> None:
    registry = PluginRegistry(disabled=["toy"], entry_points=False)
    info = registry.register(ToyPlugin(), "toy")
    assert info.status == "disabled"
    with pytest.raises(PluginNotFound, match="disabled by config: toy"):
        registry.find("train", "toy")


def test_plugin_with_bad_hook_signature_is_refused() -> None:
    module = types.ModuleType("plugin_under_test")

    @hookimpl
    def train(request: object, unknown_argument: object) -> None:
        return None

    module.train = train
    registry = PluginRegistry(entry_points=False)
    with pytest.raises(ValueError, match="cannot be registered"):
        registry.register(module, "bad")
    assert registry.infos()[0].status == "failed"


def test_pattern_names_match_families() -> None:
    module = types.ModuleType("plugin_under_test")

    @hookimpl
    def provided_names() -> dict[str, list[str]]:
        return {"init_adapter": ["pissa", "pissa_niter_*"]}

    @hookimpl
    def init_adapter(request: object) -> str:
        return "made"

    module.provided_names, module.init_adapter = provided_names, init_adapter
    registry = PluginRegistry(entry_points=False)
    registry.register(module, "pissa")
    assert registry.find("init_adapter", "pissa_niter_16") == "pissa"
    with pytest.raises(PluginNotFound):
        registry.find("init_adapter", "dora")


def test_caller_keeps_pluggy_semantics_for_wrappers(toy_registry: PluginRegistry) -> None:
    """A plain implementation is called directly; a wrapper of the same plugin still wraps it."""
    module = types.ModuleType("plugin_with_wrapper")
    seen: list[str] = []

    @hookimpl
    def train(request: str) -> str:
        seen.append(request)
        return f"trained on {request}"

    module.train = train
    toy_registry.register(module, "plain")
    plain = toy_registry.caller("train", "plain")
    assert plain("data") == "trained on data" and seen == ["data"]

    wrapped = types.ModuleType("plugin_wrapped")

    @hookimpl(specname="train")
    def train_impl(request: str) -> str:
        return f"inner {request}"

    @hookimpl(wrapper=True, specname="train")
    def around(request: str):  # type: ignore[no-untyped-def]
        result = yield
        return f"[{result}]"

    wrapped.train_impl = train_impl  # type: ignore[attr-defined]
    wrapped.around = around  # type: ignore[attr-defined]
    toy_registry.register(wrapped, "wrapped")
    assert toy_registry.caller("train", "wrapped")("x") == "[inner x]"


def test_caller_refuses_an_empty_result(toy_registry: PluginRegistry) -> None:
    module = types.ModuleType("plugin_returning_none")

    @hookimpl
    def train(request: object) -> None:
        return None

    module.train = train
    toy_registry.register(module, "silent")
    with pytest.raises(RuntimeError, match="returned nothing from train for 'silent'"):
        toy_registry.caller("train", "silent")(None)
