"""Forge hook implementations for PiSSA / QPiSSA; the work lives in :mod:`forge_pissa.adapter`.

Importing this module stays light: torch, transformers and PEFT load on the
first ``init_adapter`` call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from forge_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from forge_core.contracts import InitAdapterRequest, InitAdapterResult


@hookimpl
def provided_names() -> dict[str, list[str]]:
    """``pissa`` (full SVD) and ``pissa_niter_N`` (randomized SVD, N subspace iterations)."""
    return {"init_adapter": ["pissa", "pissa_niter_*"]}


@hookimpl
def init_adapter(request: InitAdapterRequest) -> InitAdapterResult | None:
    """Make a PiSSA adapter (QPiSSA with ``train.quantize_4bit``) on the request's base model."""
    from forge_pissa.adapter import init_pissa

    return init_pissa(request)
