"""Forge hook implementations for Go; the parsing work lives in :mod:`forge_go.parser`.

Importing this module stays light: tree-sitter is imported on the first ``parse``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from forge_core.contracts import LanguageSpec
from forge_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from forge_core.contracts import ParseRequest, ParseResult

#: The language name this plugin registers and answers ``parse`` for.
LANGUAGE = "go"


@hookimpl
def register_languages() -> list[LanguageSpec]:
    """Declare Go, parsed from ``.go`` files."""
    return [LanguageSpec(name=LANGUAGE, extensions=[".go"])]


@hookimpl
def parse(request: ParseRequest) -> ParseResult | None:
    """Turn one Go file into whole code units; None for any other language."""
    if request.language != LANGUAGE:
        return None
    from forge_go.parser import parse_go

    return parse_go(request)
