"""Forge: fine-tune a code LLM on your own repository, on your own hardware, and serve it.

The core is small: the pipeline, the data contracts, the plugin hooks and the
run store. Everything heavy lives in plugins. Public API::

    from forge_core import Forge, ForgeSettings, hookimpl, load_settings
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from forge_core.config import ForgeSettings, load_settings
    from forge_core.hookspecs import hookimpl
    from forge_core.pipeline import Forge
    from forge_core.plugins import PluginRegistry

__all__ = ["Forge", "ForgeSettings", "PluginRegistry", "__version__", "hookimpl", "load_settings"]

_LAZY = {
    "Forge": "forge_core.pipeline",
    "ForgeSettings": "forge_core.config",
    "load_settings": "forge_core.config",
    "hookimpl": "forge_core.hookspecs",
    "PluginRegistry": "forge_core.plugins",
}


def __getattr__(name: str) -> Any:
    """Import the public API on first use, so ``import forge_core`` stays fast."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'forge_core' has no attribute {name!r}")
