"""Language-aware views of a unit's text: its documentation, its body, its stub.

Parsers store documentation two ways. Python's ``docstring`` is the cleaned text
``ast.get_docstring`` returns, and the literal sits inside ``source``. Go and
JavaScript store the raw comment above the declaration (``// ...``, ``/** ... */``),
which is not part of ``source``. Everything here works from those two shapes, so
any parser plugin that follows the contract is handled.
"""

from __future__ import annotations

import ast
import inspect
import re
import warnings

from forge_core.contracts import CodeUnit

__all__ = [
    "clean_documentation",
    "declaration_line",
    "documentation_prefix",
    "first_paragraph",
    "first_sentence",
    "locate_lines",
    "python_docstring_span",
    "source_without_docstring",
    "stub",
    "summary",
    "unit_text",
]

COMMENT_START = ("//", "/*", "#")
#: Go directives such as ``//go:noinline`` are not documentation.
DIRECTIVE = re.compile(r"^//[a-z0-9]+:\S")
PY_STRING = re.compile(
    r"""[rRuU]?(?:\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')"""
)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`\"'(\[])")
SUMMARY_CHARS = 400


def is_comment(text: str) -> bool:
    """True for a raw comment block (``//``, ``/* */``, ``#``)."""
    return text.lstrip().startswith(COMMENT_START)


def documentation_prefix(unit: CodeUnit) -> str:
    """The comments written above the unit that its ``source`` does not contain."""
    parts: list[str] = []
    for text in (unit.leading_comment, unit.docstring):
        if text and is_comment(text) and text not in unit.source and text not in parts:
            parts.append(text)
    return "\n".join(parts)


def unit_text(unit: CodeUnit) -> str:
    """The unit as a reader sees it in the file: its comments above, then its source."""
    prefix = documentation_prefix(unit)
    return f"{prefix}\n{unit.source}" if prefix else unit.source


def clean_documentation(text: str) -> str:
    """Documentation as plain text: comment markers and Go directives removed."""
    stripped = text.strip()
    if stripped.startswith("/*"):
        body = stripped.removeprefix("/**").removeprefix("/*").removesuffix("*/")
        lines = [re.sub(r"^\s*\*? ?", "", line, count=1) for line in body.split("\n")]
    elif stripped.startswith("//"):
        lines = [
            re.sub(r"^\s*// ?", "", line, count=1)
            for line in stripped.split("\n")
            if not DIRECTIVE.match(line.strip())
        ]
    elif stripped.startswith("#"):
        lines = [re.sub(r"^\s*# ?", "", line, count=1) for line in stripped.split("\n")]
    else:
        lines = stripped.split("\n")
    return "\n".join(line.rstrip() for line in lines).strip()


def first_paragraph(clean: str) -> list[str]:
    """The lines of the first paragraph (a blank line or a ``@tag`` line ends it)."""
    lines: list[str] = []
    for line in clean.split("\n"):
        if not line.strip() or (line.lstrip().startswith("@") and lines):
            break
        if line.lstrip().startswith("@"):
            return []
        lines.append(line.strip())
    return lines


def first_sentence(clean: str) -> str:
    """The first sentence of plain documentation (the whole first paragraph if none ends)."""
    paragraph = " ".join(first_paragraph(clean))
    return SENTENCE_END.split(paragraph, maxsplit=1)[0].strip()


def summary(clean: str) -> str:
    """The first paragraph on one line, cut after a sentence near ``SUMMARY_CHARS``."""
    paragraph = " ".join(first_paragraph(clean))
    if len(paragraph) <= SUMMARY_CHARS:
        return paragraph
    kept = ""
    for sentence in SENTENCE_END.split(paragraph):
        if kept and len(kept) + len(sentence) + 1 > SUMMARY_CHARS:
            break
        kept = f"{kept} {sentence}".strip()
    return kept


def locate_lines(document: str, lines: list[str], start: int = 0) -> str | None:
    """The verbatim span of ``document`` that runs from the first to the last of ``lines``.

    Each line is searched after the previous one, so the span covers them in
    order with whatever the document has between (comment markers, indentation).
    """
    wanted = [line for line in lines if line.strip()]
    if not wanted:
        return None
    first = document.find(wanted[0], start)
    if first < 0:
        return None
    end = first + len(wanted[0])
    for line in wanted[1:]:
        found = document.find(line, end)
        if found < 0 or "\n\n" in document[end:found]:
            break
        end = found + len(line)
    return document[first:end]


def declaration_line(unit: CodeUnit) -> str:
    """The first line of the declaration itself (after decorators): where the name is."""
    index = unit.source.find(unit.signature.split("\n", 1)[0])
    line_start = unit.source.rfind("\n", 0, max(index, 0)) + 1 if index > 0 else 0
    line_end = unit.source.find("\n", line_start)
    return unit.source[line_start : line_end if line_end >= 0 else len(unit.source)].strip()


def python_docstring_span(unit: CodeUnit) -> tuple[int, int] | None:
    """Start and end offsets in ``source`` of the literal that is the unit's docstring."""
    if unit.language != "python" or not unit.docstring:
        return None
    header = unit.source.find(unit.signature)
    if header < 0:
        return None
    body = header + len(unit.signature)
    match = PY_STRING.match(unit.source, body + _blank_length(unit.source[body:]))
    if match is None:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = ast.literal_eval(match.group(0))
    except (ValueError, SyntaxError):
        return None
    if not isinstance(value, str) or inspect.cleandoc(value) != unit.docstring:
        return None
    return match.start(), match.end()


def _blank_length(text: str) -> int:
    """Length of the whitespace (and line-continuation) prefix of ``text``."""
    return len(text) - len(text.lstrip())


def source_without_docstring(unit: CodeUnit) -> str | None:
    """The unit's source with its docstring taken out; None when it cannot be found.

    Go and JavaScript keep doc comments outside ``source``, so their source is
    returned as is. Python loses the literal and its line; a body left empty
    gets ``...`` so the text still reads as a definition.
    """
    if unit.language != "python":
        return unit.source if unit.docstring and unit.docstring not in unit.source else None
    span = python_docstring_span(unit)
    if span is None:
        return None
    start, end = span
    line_start = unit.source.rfind("\n", 0, start) + 1
    indent = unit.source[line_start:start]
    line_end = unit.source.find("\n", end)
    line_end = len(unit.source) if line_end < 0 else line_end
    if unit.source[end:line_end].strip() or indent.strip():
        return unit.source[:start] + unit.source[end:]  # `def f(): "doc"; return 1`
    rest = unit.source[line_end + 1 :] if line_end < len(unit.source) else ""
    head = unit.source[:line_start].rstrip("\n")
    if not rest.strip():
        return f"{head}\n{indent}..."
    return f"{head}\n{rest}"


def stub(unit: CodeUnit) -> str | None:
    """Signature and documentation without the body: what an ``implement`` question shows."""
    if unit.language == "python":
        span = python_docstring_span(unit)
        if span is None:
            return None
        line_start = unit.source.rfind("\n", 0, span[0]) + 1
        indent = unit.source[line_start : span[0]]
        indent = indent if not indent.strip() else "    "
        return f"{unit.source[: span[1]]}\n{indent}..."
    prefix = documentation_prefix(unit)
    if not prefix or not unit.source.startswith(unit.signature):
        return None
    return f"{prefix}\n{unit.signature} {{ ... }}"


def _margin(lines: list[str]) -> str:
    """The whitespace every non-blank line starts with."""
    indents = [line[: len(line) - len(line.lstrip())] for line in lines if line.strip()]
    if not indents:
        return ""
    margin = indents[0]
    for indent in indents[1:]:
        while not indent.startswith(margin):
            margin = margin[:-1]
    return margin


def _container(unit: CodeUnit, by_name: dict[tuple[str, str], list[CodeUnit]]) -> CodeUnit | None:
    """The enclosing unit whose source holds ``unit``'s (a method's class)."""
    for candidate in by_name.get((unit.path, unit.parent or ""), []):
        if candidate.start_byte <= unit.start_byte and unit.end_byte <= candidate.end_byte:
            return candidate
    return None


def _indentation(unit: CodeUnit, container: CodeUnit | None) -> str:
    """The whitespace before the unit's first line in its file."""
    if container is not None:
        index = container.source.find(unit.source)
        if index > 0:
            before = container.source[container.source.rfind("\n", 0, index) + 1 : index]
            return before if not before.strip() else ""
    last = unit.source.rsplit("\n", 1)[-1]
    if unit.language != "python" and "\n" in unit.source and last.strip()[:1] in ("}", ")"):
        return last[: len(last) - len(last.lstrip())]  # the closing brace lines up with the start
    return ""


def reindent(unit: CodeUnit, container: CodeUnit | None = None) -> CodeUnit:
    """The unit with its source (and signature) dedented as a whole.

    Parsers cut a method's source at its first character, so its first line
    has no indentation while the others keep the file's. Putting the first
    line's indentation back and removing the common margin gives code that
    reads (and, for Python, parses) on its own.
    """
    indent = _indentation(unit, container)
    lines = (indent + unit.source).split("\n")
    margin = _margin(lines)
    if not margin:
        return unit

    def strip(text: str) -> str:
        return "\n".join(
            line[len(margin) :] if line.startswith(margin) else line.lstrip()
            for line in text.split("\n")
        )

    return unit.model_copy(
        update={"source": strip(indent + unit.source), "signature": strip(indent + unit.signature)}
    )


def displayed_units(units: list[CodeUnit]) -> list[CodeUnit]:
    """Every unit as documents show it (see :func:`reindent`); ids and hashes unchanged."""
    by_name: dict[tuple[str, str], list[CodeUnit]] = {}
    for unit in units:
        by_name.setdefault((unit.path, unit.qualified_name), []).append(unit)
    return [reindent(unit, _container(unit, by_name)) for unit in units]
