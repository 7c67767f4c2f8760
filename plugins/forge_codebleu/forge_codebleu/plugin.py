"""Forge hook implementations for CodeBLEU; the work lives in :mod:`forge_codebleu.metric`.

Importing this module stays light: tree-sitter, the grammars and sacrebleu load on the
first ``evaluate`` call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from forge_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from forge_core.contracts import EvaluateRequest, EvaluateResult


@hookimpl
def provided_names() -> dict[str, list[str]]:
    """The metric ``codebleu`` for the ``evaluate`` hook."""
    return {"evaluate": ["codebleu"]}


@hookimpl
def evaluate(request: EvaluateRequest) -> EvaluateResult | None:
    """CodeBLEU (Ren et al. 2020) of the samples' answers against their references."""
    from forge_codebleu.metric import evaluate_codebleu

    return evaluate_codebleu(request)
