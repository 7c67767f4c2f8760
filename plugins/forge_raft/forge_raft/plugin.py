"""Forge hook implementation for RAFT synthesis; the work lives in :mod:`forge_raft.synthesis`.

Importing this module stays light: BM25, Jinja and the templates load on the
first ``synthesize`` call. The plugin also contributes ``forge ask``, which asks the
deployed model a question with the repository's code in context, as in training.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from forge_core.hookspecs import hookimpl

if TYPE_CHECKING:
    import click

    from forge_core.contracts import SynthesizeRequest, SynthesizeResult


@hookimpl
def synthesize(request: SynthesizeRequest) -> SynthesizeResult | None:
    """Make RAFT examples (grounded questions, quoted answers) from the repository's units."""
    from forge_raft.synthesis import synthesize_examples

    return synthesize_examples(request)


@hookimpl
def register_cli_commands() -> list[click.Command]:
    """``forge ask``: a question to the deployed model, grounded in the mined code."""
    from forge_raft.ask_cli import ask

    return [ask]
