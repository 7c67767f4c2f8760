"""Forge hook implementations for JavaScript (the parsing lives in ``parser``)."""

from __future__ import annotations

from forge_core.contracts import LanguageSpec, ParseRequest, ParseResult
from forge_core.hookspecs import hookimpl

LANGUAGE = "javascript"
EXTENSIONS = [".js", ".mjs", ".cjs", ".jsx"]


@hookimpl
def register_languages() -> list[LanguageSpec]:
    """JavaScript, with its module flavours and JSX."""
    return [LanguageSpec(name=LANGUAGE, extensions=list(EXTENSIONS))]


@hookimpl
def parse(request: ParseRequest) -> ParseResult | None:
    """Turn one JavaScript file into whole units; None for other languages."""
    if request.language != LANGUAGE:
        return None
    # tree-sitter loads only when a file is parsed, so listing plugins stays fast.
    from forge_javascript.parser import parse_javascript

    return parse_javascript(request.path, request.source)
