"""Plugin discovery and selection by name.

Plugins are found through the ``forge`` entry-point group (``[project.entry-points.forge]``
in a plugin's ``pyproject.toml``). A plugin that fails to import, or whose
registry hooks raise, is listed with its error and otherwise ignored: one broken
plugin never breaks the CLI. Pipeline hooks are called on exactly one plugin,
chosen by the name the configuration gives (see :mod:`forge_core.hookspecs`).
"""

from __future__ import annotations

import fnmatch
import importlib
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pluggy

from forge_core import hookspecs
from forge_core.contracts import BaseModelSpec, LanguageSpec

if TYPE_CHECKING:
    import click

    from forge_core.backends import ModelBackendSpec
    from forge_core.validation import ValidationCheck

ENTRY_POINT_GROUP = "forge"
#: Light plugins shipped inside forge-core, always registered (unless disabled).
BUILTIN_PLUGINS: dict[str, str] = {
    "builtin-checks": "forge_core.builtin.checks",
    "builtin-metrics": "forge_core.builtin.metrics",
}


class PluginNotFound(LookupError):
    """No installed plugin provides the requested name; the message says what to install."""


class PluginConflict(LookupError):
    """Two plugins provide the same name for the same hook."""


@dataclass
class PluginInfo:
    """What ``forge plugins`` shows about one plugin."""

    name: str
    distribution: str | None
    version: str | None
    module: str
    status: Literal["loaded", "failed", "disabled"] = "loaded"
    error: str | None = None
    origin: Literal["entry-point", "builtin", "in-process"] = "entry-point"
    hooks: list[str] = field(default_factory=list)
    provides: dict[str, list[str]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The JSON shape of ``forge plugins --json``."""
        return {
            "name": self.name,
            "version": self.version,
            "distribution": self.distribution,
            "module": self.module,
            "status": self.status,
            "error": self.error,
            "origin": self.origin,
            "hooks": self.hooks,
            "provides": self.provides,
        }


def known_distribution(hook: str, name: str) -> str | None:
    """The first-party distribution that provides ``name`` for ``hook``, if any."""
    text = resources.files("forge_core").joinpath("data/known_plugins.toml").read_text("utf-8")
    table: dict[str, str] = tomllib.loads(text).get(hook, {})
    for pattern, distribution in table.items():
        if fnmatch.fnmatchcase(name, pattern):
            return distribution
    return None


def install_hint(distribution: str) -> str:
    """How to install a first-party distribution."""
    if distribution == "forge-core":
        return "it ships with forge-core; reinstall forge-core"
    folder = distribution.replace("-", "_")
    return f"install {distribution} (`pip install -e plugins/{folder}` in a Forge checkout)"


class PluginRegistry:
    """The plugin manager of one Forge process: discovery, listing, selection."""

    def __init__(
        self,
        disabled: Iterable[str] = (),
        *,
        entry_points: bool = True,
        builtins: bool = True,
    ) -> None:
        self.disabled = set(disabled)
        self.manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.manager.add_hookspecs(hookspecs)
        self._infos: dict[str, PluginInfo] = {}
        if builtins:
            for name, module_name in BUILTIN_PLUGINS.items():
                self._load(
                    name,
                    module_name,
                    lambda m=module_name: importlib.import_module(m),
                    origin="builtin",
                )
        if entry_points:
            for entry_point in sorted(
                metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name
            ):
                dist = entry_point.dist
                self._load(
                    entry_point.name,
                    entry_point.value,
                    entry_point.load,
                    distribution=dist.name if dist else None,
                    version=dist.version if dist else None,
                )

    # ------------------------------------------------------------------ registration

    def _load(
        self,
        name: str,
        module_name: str,
        loader: Any,
        *,
        distribution: str | None = "forge-core",
        version: str | None = None,
        origin: Literal["entry-point", "builtin"] = "entry-point",
    ) -> None:
        if version is None and distribution == "forge-core":
            from forge_core import __version__

            version = __version__
        info = PluginInfo(name, distribution, version, module_name, origin=origin)
        self._infos[name] = info
        if name in self.disabled:
            info.status = "disabled"
            return
        if self.manager.has_plugin(name):
            info.status, info.error = "failed", f"a plugin named {name!r} is already registered"
            return
        try:
            plugin = loader()
        except Exception as exc:  # a broken plugin must not break the CLI
            info.status, info.error = "failed", f"{type(exc).__name__}: {exc}"
            return
        self._register(plugin, info)

    def register(
        self,
        plugin: object,
        name: str,
        *,
        distribution: str | None = None,
        version: str | None = None,
    ) -> PluginInfo:
        """Register an in-process plugin (embedding, tests); it behaves like an installed one."""
        module = getattr(plugin, "__name__", type(plugin).__name__)
        info = PluginInfo(name, distribution, version, module, origin="in-process")
        self._infos[name] = info
        if name in self.disabled:
            info.status = "disabled"
            return info
        self._register(plugin, info)
        if info.status == "failed":
            raise ValueError(f"plugin {name!r} cannot be registered: {info.error}")
        return info

    def _register(self, plugin: object, info: PluginInfo) -> None:
        try:
            self.manager.register(plugin, name=info.name)
            info.hooks = sorted(
                caller.name
                for caller in self.manager.get_hookcallers(plugin) or []
                if caller.name in hookspecs.PIPELINE_HOOKS + hookspecs.REGISTRY_HOOKS
            )
            info.provides = self._declared_names(info)
        except Exception as exc:
            if self.manager.is_registered(plugin):
                self.manager.unregister(plugin)
            info.status, info.error = "failed", f"{type(exc).__name__}: {exc}"
            info.hooks, info.provides = [], {}

    def _declared_names(self, info: PluginInfo) -> dict[str, list[str]]:
        """Names the plugin answers to, per pipeline hook (see ``provided_names``)."""
        declared: dict[str, list[str]] = {}
        if "provided_names" in info.hooks:
            for hook, names in self._call_one(info.name, "provided_names").items():
                if hook not in hookspecs.PIPELINE_HOOKS and hook != "model_backend":
                    raise ValueError(f"provided_names: {hook!r} is not a pipeline hook")
                declared[hook] = sorted(names)
        provides: dict[str, list[str]] = {}
        for hook in hookspecs.PIPELINE_HOOKS:
            if hook == "parse" and "parse" in info.hooks:
                languages = self._call_one(info.name, "register_languages") or []
                provides[hook] = sorted(LanguageSpec.model_validate(s).name for s in languages)
            elif hook in info.hooks:
                provides[hook] = declared.get(hook, [info.name])
        if "register_model_backends" in info.hooks:
            backends = self._call_one(info.name, "register_model_backends") or []
            provides["model_backend"] = sorted(spec.name for spec in backends)
        if "register_validation_checks" in info.hooks:
            checks = self._call_one(info.name, "register_validation_checks") or []
            provides["validation_check"] = [check.name for check in checks]
        if "register_base_models" in info.hooks:
            models = self._call_one(info.name, "register_base_models") or []
            provides["base_model"] = sorted(BaseModelSpec.model_validate(m).name for m in models)
        return provides

    def _call_one(self, plugin_name: str, hook: str, **kwargs: Any) -> Any:
        """Call ``hook`` on one plugin only."""
        plugin = self.manager.get_plugin(plugin_name)
        others = [p for p in self.manager.get_plugins() if p is not plugin]
        caller = self.manager.subset_hook_caller(hook, remove_plugins=others)
        result = caller(**kwargs)
        firstresult = caller.spec is not None and caller.spec.opts.get("firstresult", False)
        if isinstance(result, list) and not firstresult:
            return result[0] if result else None
        return result

    # ------------------------------------------------------------------ queries

    def infos(self) -> list[PluginInfo]:
        """Every plugin seen, loaded or not, sorted by name."""
        return sorted(self._infos.values(), key=lambda info: info.name)

    def loaded(self) -> list[PluginInfo]:
        """The plugins in use."""
        return [info for info in self.infos() if info.status == "loaded"]

    def versions(self, names: Iterable[str] | None = None) -> dict[str, str]:
        """Plugin name → version, for manifests."""
        wanted = set(names) if names is not None else None
        return {
            info.name: info.version or "unknown"
            for info in self.loaded()
            if wanted is None or info.name in wanted
        }

    def providers(self, hook: str) -> dict[str, list[str]]:
        """Plugin name → names it provides for ``hook``."""
        return {info.name: info.provides[hook] for info in self.loaded() if info.provides.get(hook)}

    def available(self, hook: str) -> list[str]:
        """Every name provided for ``hook``, sorted."""
        return sorted({n for names in self.providers(hook).values() for n in names})

    def find(self, hook: str, name: str) -> str:
        """Return the plugin that provides ``name`` for ``hook``, or explain what to install."""
        matches = [
            plugin
            for plugin, names in self.providers(hook).items()
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in names)
        ]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise PluginConflict(
                f"{hook} {name!r} is provided by several plugins: {', '.join(sorted(matches))}; "
                f"disable all but one with plugins.disabled"
            )
        raise PluginNotFound(self.missing_message(hook, name))

    def missing_message(self, hook: str, name: str) -> str:
        """The message for a name nobody provides: what is installed and what to install."""
        installed = ", ".join(self.available(hook)) or "none"
        message = f"no installed plugin provides {hook} {name!r} (installed: {installed})"
        disabled = [i.name for i in self.infos() if i.status == "disabled"]
        distribution = known_distribution(hook, name)
        if distribution:
            message += f"; {install_hint(distribution)}"
        failed = [i for i in self.infos() if i.status == "failed"]
        if failed:
            message += "; plugins that failed to load: " + ", ".join(
                f"{i.name} ({i.error})" for i in failed
            )
        if disabled:
            message += f"; disabled by config: {', '.join(disabled)}"
        return message

    def info(self, name: str) -> PluginInfo:
        """The listing entry of the plugin called ``name``."""
        return self._infos[name]

    def caller(self, hook: str, name: str) -> Callable[[Any], Any]:
        """A function that calls pipeline ``hook`` on the provider of ``name`` (resolved once)."""
        plugin = self.find(hook, name)
        others = [p for p in self.manager.get_plugins() if p is not self.manager.get_plugin(plugin)]
        subset = self.manager.subset_hook_caller(hook, remove_plugins=others)
        # One plain implementation of a first-result hook: pluggy would call just that
        # function and hand back its result, so call it directly (per-file hooks such as
        # ``parse`` run tens of thousands of times; pluggy's dispatch costs microseconds).
        implementations = subset.get_hookimpls()
        only = implementations[0] if len(implementations) == 1 else None
        firstresult = subset.spec is not None and subset.spec.opts.get("firstresult", False)
        if (
            only is not None
            and firstresult
            and not (only.hookwrapper or only.wrapper)
            and only.argnames == ("request",)
        ):
            target: Callable[..., Any] = only.function
        else:
            target = subset

        def call(request: Any) -> Any:
            result = target(request=request)
            if result is None:
                raise RuntimeError(f"plugin {plugin!r} returned nothing from {hook} for {name!r}")
            return result

        return call

    def call(self, hook: str, name: str, request: Any) -> Any:
        """Call pipeline ``hook`` on the plugin that provides ``name``."""
        return self.caller(hook, name)(request)

    # ------------------------------------------------------------------ registries

    def _collect(self, hook: str) -> list[tuple[str, Any]]:
        """(plugin name, item) for every item every loaded plugin registers."""
        items: list[tuple[str, Any]] = []
        for info in self.loaded():
            if hook in info.hooks:
                items.extend((info.name, item) for item in self._call_one(info.name, hook) or [])
        return items

    def languages(self) -> dict[str, tuple[str, LanguageSpec]]:
        """Language name → (plugin, spec)."""
        return {
            spec.name: (plugin, spec)
            for plugin, raw in self._collect("register_languages")
            for spec in [LanguageSpec.model_validate(raw)]
        }

    def base_models(self) -> list[tuple[str, BaseModelSpec]]:
        """(plugin, spec) for every registered base model."""
        return [
            (plugin, BaseModelSpec.model_validate(raw))
            for plugin, raw in self._collect("register_base_models")
        ]

    def resolve_base_model(self, wanted: str | None) -> str:
        """The path (or hub id) of base model ``wanted``: a registered name, a local
        folder or a hub id; None means the installed default (tinycoder)."""
        models = self.base_models()
        if wanted is None:
            defaults = [spec for _, spec in models if spec.default]
            if not defaults:
                raise PluginNotFound(
                    "no base model configured (train.base_model) and no default installed; "
                    + self.missing_message("base_model", "tinycoder").split("; ", 1)[-1]
                )
            return defaults[0].path
        for _, spec in models:
            if spec.name == wanted:
                return spec.path
        local = Path(wanted).expanduser()
        if local.exists():
            return str(local)
        if "/" in wanted:
            return wanted
        known = ", ".join(spec.name for _, spec in models) or "none"
        raise PluginNotFound(
            f"train.base_model {wanted!r} is neither a registered name ({known}), "
            f"a local directory, nor a hub id like 'Qwen/Qwen2.5-Coder-0.5B'"
        )

    def model_backends(self) -> dict[str, ModelBackendSpec]:
        """Backend name → spec."""
        return {spec.name: spec for _, spec in self._collect("register_model_backends")}

    def model_backend(self, name: str) -> ModelBackendSpec:
        """The backend called ``name``, or explain what to install."""
        backends = self.model_backends()
        if name in backends:
            return backends[name]
        raise PluginNotFound(self.missing_message("model_backend", name))

    def model_backend_plugin(self, name: str) -> str:
        """The plugin that registers the model backend called ``name``."""
        for plugin, spec in self._collect("register_model_backends"):
            if spec.name == name:
                return plugin
        raise PluginNotFound(self.missing_message("model_backend", name))

    def validation_check_plugins(self) -> list[str]:
        """The plugins that contribute validation checks, sorted."""
        return sorted({plugin for plugin, _ in self._collect("register_validation_checks")})

    def validation_checks(self) -> list[ValidationCheck]:
        """Every contributed validation check, built-in ones first."""
        ordered = sorted(
            self._collect("register_validation_checks"), key=lambda i: i[0] != "builtin-checks"
        )
        return [check for _, check in ordered]

    def cli_commands(self) -> list[tuple[str, click.Command]]:
        """(plugin, command) for every contributed CLI command."""
        commands: list[tuple[str, click.Command]] = []
        for info in self.loaded():
            if "register_cli_commands" in info.hooks:
                try:
                    found = self._call_one(info.name, "register_cli_commands") or []
                except Exception as exc:
                    info.status, info.error = "failed", f"{type(exc).__name__}: {exc}"
                    continue
                commands.extend((info.name, command) for command in found)
        return commands
