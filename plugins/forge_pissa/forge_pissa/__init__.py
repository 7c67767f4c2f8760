"""Forge plugin: PiSSA / QPiSSA adapter initialisation through PEFT.

``import forge_pissa`` stays light; the helpers load torch and PEFT on first use::

    from forge_pissa import convert_to_lora, init_pissa
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from forge_pissa.adapter import convert_to_lora, init_pissa

__all__ = ["__version__", "convert_to_lora", "init_pissa"]


def __getattr__(name: str) -> Any:
    """Import the helpers of :mod:`forge_pissa.adapter` on first use."""
    if name in ("convert_to_lora", "init_pissa"):
        from forge_pissa import adapter

        return getattr(adapter, name)
    raise AttributeError(f"module 'forge_pissa' has no attribute {name!r}")
