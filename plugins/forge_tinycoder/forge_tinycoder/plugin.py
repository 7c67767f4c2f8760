"""Forge hook implementations: register the shipped model as the default base ``tinycoder``.

Importing this module stays light (pathlib and forge_core only): the model folder
is a path, loaded by whichever trainer or backend uses it.
"""

from __future__ import annotations

from pathlib import Path

from forge_core.contracts import BaseModelSpec
from forge_core.hookspecs import hookimpl

#: The registered name of the embedded base model.
NAME = "tinycoder"
#: The model folder shipped inside the package.
MODEL_DIR = Path(__file__).resolve().parent / "model"


@hookimpl
def register_base_models() -> list[BaseModelSpec]:
    """Declare ``tinycoder``, the default base model used when none is configured."""
    return [
        BaseModelSpec(
            name=NAME,
            path=str(MODEL_DIR),
            description="Forge's own small Llama-architecture code model (Python, Go, "
            "JavaScript), trained from scratch on permissively licensed code; works offline.",
            default=True,
        )
    ]
