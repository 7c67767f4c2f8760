"""Hook implementations of the ``python`` parser plugin.

Kept light on purpose: tree-sitter is imported only when a file is parsed.
"""

from __future__ import annotations

from forge_core.contracts import LanguageSpec, ParseRequest, ParseResult
from forge_core.hookspecs import hookimpl

LANGUAGE = "python"


@hookimpl
def register_languages() -> list[LanguageSpec]:
    """Claim Python sources and stubs."""
    return [LanguageSpec(name=LANGUAGE, extensions=[".py", ".pyi"])]


@hookimpl
def parse(request: ParseRequest) -> ParseResult | None:
    """Parse one Python file into whole functions, methods and classes."""
    if request.language != LANGUAGE:
        return None
    from forge_python.parser import parse_source

    return parse_source(request.path, request.source)
