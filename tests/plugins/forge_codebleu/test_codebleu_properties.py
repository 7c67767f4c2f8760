"""The known properties of CodeBLEU, for Python, JavaScript and Go."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from forge_codebleu.score import CodeBLEUScore, code_bleu, combine, parse_weights


@dataclass(frozen=True)
class Program:
    """A function as its header, statements and footer, so tests can edit its statements."""

    header: str
    statements: tuple[str, ...]
    footer: str
    unrelated: str

    def source(self, statements: tuple[str, ...] | None = None) -> str:
        body = self.statements if statements is None else statements
        return self.header + "".join(body) + self.footer


PROGRAMS: dict[str, Program] = {
    "python": Program(
        header="def stats(values, scale):\n",
        statements=(
            "    total = sum(values)\n",
            "    count = len(values) or 1\n",
            "    mean = total / count\n",
            "    scaled = mean * scale\n",
            "    return scaled\n",
        ),
        footer="",
        unrelated=(
            "class Stack:\n"
            "    def __init__(self):\n"
            "        self.items = []\n"
            "\n"
            "    def push(self, item):\n"
            "        self.items.append(item)\n"
        ),
    ),
    "javascript": Program(
        header="function stats(values, scale) {\n",
        statements=(
            "  const total = values.reduce((a, b) => a + b, 0);\n",
            "  const count = values.length || 1;\n",
            "  const mean = total / count;\n",
            "  const scaled = mean * scale;\n",
            "  return scaled;\n",
        ),
        footer="}\n",
        unrelated=(
            "class Stack {\n"
            "  constructor() { this.items = []; }\n"
            "  push(item) { this.items.push(item); }\n"
            "}\n"
        ),
    ),
    "go": Program(
        header="func stats(values []float64, scale float64) float64 {\n",
        statements=(
            "\ttotal := sum(values)\n",
            "\tcount := float64(len(values))\n",
            "\tmean := total / count\n",
            "\tscaled := mean * scale\n",
            "\treturn scaled\n",
        ),
        footer="}\n",
        unrelated=(
            "type Stack struct {\n"
            "\titems []int\n"
            "}\n"
            "\n"
            "func (s *Stack) Push(item int) {\n"
            "\ts.items = append(s.items, item)\n"
            "}\n"
        ),
    ),
}
LANGUAGES = sorted(PROGRAMS)
RENAMES = {
    "values": "xs",
    "scale": "k",
    "total": "acc",
    "count": "n",
    "mean": "avg",
    "scaled": "out",
}


def rename(code: str) -> str:
    """Rename every variable of the programs consistently (whole words only)."""
    pattern = re.compile(r"\b(" + "|".join(RENAMES) + r")\b")
    return pattern.sub(lambda match: RENAMES[match.group(1)], code)


def score(candidate: str, reference: str, language: str) -> CodeBLEUScore:
    result = code_bleu(candidate, reference, language)
    assert result is not None
    return result


@pytest.mark.parametrize("language", LANGUAGES)
def test_identical_code_scores_exactly_one(language: str) -> None:
    code = PROGRAMS[language].source()
    result = score(code, code, language)
    assert result.components() == {
        "ngram": 1.0,
        "weighted_ngram": 1.0,
        "syntax": 1.0,
        "dataflow": 1.0,
    }
    assert result.codebleu == 1.0


@pytest.mark.parametrize(
    ("language", "code"),
    [("python", 'print("hi")\n'), ("javascript", "console.log(1);\n"), ("go", "fmt.Println()\n")],
)
def test_identical_code_without_data_flow_scores_exactly_one(language: str, code: str) -> None:
    result = score(code, code, language)
    assert result.dataflow is None
    assert result.codebleu == 1.0


@pytest.mark.parametrize("language", LANGUAGES)
def test_renaming_variables_keeps_ast_and_data_flow(language: str) -> None:
    reference = PROGRAMS[language].source()
    candidate = rename(reference)
    assert candidate != reference
    result = score(candidate, reference, language)
    assert result.syntax == 1.0
    assert result.dataflow == 1.0
    assert result.ngram < 1.0
    assert result.weighted_ngram < 1.0


@pytest.mark.parametrize("language", LANGUAGES)
def test_reordering_independent_statements_keeps_ast_match(language: str) -> None:
    program = PROGRAMS[language]
    first, second, *rest = program.statements
    reordered = program.source((second, first, *rest))
    result = score(reordered, program.source(), language)
    assert result.syntax == 1.0
    assert result.ngram < 1.0


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_unrelated_program_scores_low(language: str) -> None:
    program = PROGRAMS[language]
    result = score(program.unrelated, program.source(), language)
    assert result.codebleu < 0.3
    assert result.syntax is not None and result.syntax < 0.2


@pytest.mark.parametrize("language", LANGUAGES)
def test_deleting_statements_lowers_every_component(language: str) -> None:
    program = PROGRAMS[language]
    reference = program.source()
    kept = len(program.statements)
    previous = score(reference, reference, language)
    while kept > 1:
        kept -= 1
        current = score(program.source(program.statements[:kept]), reference, language)
        for name, value in current.components().items():
            before = previous.components()[name]
            assert value is not None and before is not None
            assert value < before, f"{name} did not drop when keeping {kept} statements"
        assert current.codebleu < previous.codebleu
        previous = current


@pytest.mark.parametrize("language", LANGUAGES)
def test_scores_work_both_ways_and_renaming_is_symmetric(language: str) -> None:
    program = PROGRAMS[language]
    reference = program.source()
    shorter = program.source(program.statements[:2])
    for candidate, against in ((shorter, reference), (reference, shorter)):
        result = score(candidate, against, language)
        values = [v for v in result.components().values() if v is not None]
        assert all(0.0 <= value <= 1.0 for value in [*values, result.codebleu])
    renamed = rename(reference)
    forward, backward = score(renamed, reference, language), score(reference, renamed, language)
    assert forward.components() == pytest.approx(backward.components())
    assert forward.codebleu == pytest.approx(backward.codebleu)


@pytest.mark.parametrize("language", LANGUAGES)
def test_empty_code(language: str) -> None:
    reference = PROGRAMS[language].source()
    assert code_bleu(reference, "", language) is None
    assert code_bleu("", "", language) is None
    assert code_bleu(reference, "  \n\t", language) is None
    comment = "# only a comment\n" if language == "python" else "// only a comment\n"
    assert code_bleu(reference, comment, language) is None
    nothing = score("", reference, language)
    assert nothing.components() == {
        "ngram": 0.0,
        "weighted_ngram": 0.0,
        "syntax": 0.0,
        "dataflow": 0.0,
    }
    assert nothing.codebleu == 0.0


def test_unsupported_language_has_no_score() -> None:
    assert code_bleu("fn main() {}", "fn main() {}", "rust") is None


def test_comments_do_not_count() -> None:
    plain = "def f(a):\n    return a\n"
    commented = "def f(a):\n    # the argument, unchanged\n    return a  # done\n"
    assert score(commented, plain, "python").codebleu == 1.0


def test_weights_and_renormalisation() -> None:
    assert parse_weights(None) == (0.25, 0.25, 0.25, 0.25)
    assert parse_weights([1, 1, 2, 0]) == (1.0, 1.0, 2.0, 0.0)
    assert parse_weights({"syntax": 1}) == (0.0, 0.0, 1.0, 0.0)
    assert combine((0.5, 1.0, 0.0, None)) == pytest.approx(0.5)
    assert combine((0.5, 1.0, 0.0, 1.0), (1, 0, 0, 1)) == pytest.approx(0.75)
    assert combine((1.0, 1.0, 1.0, None), (0.1, 0.2, 0.3, 0.4)) == 1.0
    for bad in ([1, 2, 3], [1, -1, 1, 1], [0, 0, 0, 0], {"bleu": 1}, "0.25", [1, "x", 1, 1]):
        with pytest.raises(ValueError, match="codebleu_weights"):
            parse_weights(bad)
    reference = PROGRAMS["python"].source()
    candidate = rename(reference)
    only_syntax = code_bleu(candidate, reference, "python", (0, 0, 1, 0))
    assert only_syntax is not None and only_syntax.codebleu == 1.0


#: Lines without data flow (nothing they name is defined): an import at the top, a log
#: call as the first statement.
EDGELESS_LINES = {
    "python": ("import os\n", '    logger.debug("stats")\n'),
    "javascript": ('import fs from "fs";\n', '  console.log("stats");\n'),
    "go": ('import "os"\n', '\tlog.Println("stats")\n'),
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_lines_without_data_flow_keep_the_data_flow_match(language: str) -> None:
    program = PROGRAMS[language]
    top, first = EDGELESS_LINES[language]
    reference = program.source()
    longer = top + program.source((first, *program.statements))
    assert score(longer, reference, language).dataflow == 1.0  # the candidate adds them
    assert score(reference, longer, language).dataflow == 1.0  # the candidate omits them
