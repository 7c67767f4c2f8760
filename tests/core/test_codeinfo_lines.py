"""Line checks that read the text in place agree with checks on ``text.split("\\n")``."""

from __future__ import annotations

import random

import pytest

from forge_core.codeinfo import (
    MINIFIED_LINE_CHARS,
    comment_block_above,
    has_line_longer_than,
    head_lines,
    leading_comment_block,
    looks_generated,
)

PIECES = ["", "x", "xxxxxxxxxxxx", "# c", "  // d ", "#", "  x  ", "\t# tab", "y" * 7]


def random_texts(count: int) -> list[str]:
    rng = random.Random(7)
    return ["\n".join(rng.choices(PIECES, k=rng.randint(0, 9))) for _ in range(count)]


@pytest.mark.parametrize("limit", [0, 1, 3, 6, 7, 11, 12, 13])
def test_long_line_found_exactly_as_by_splitting(limit: int) -> None:
    for text in random_texts(3000):
        expected = max(map(len, text.split("\n"))) > limit
        assert has_line_longer_than(text, limit) is expected, (text, limit)


def test_long_line_at_every_position_of_a_long_text() -> None:
    short = "\n".join(["a" * 40] * 200)
    assert not has_line_longer_than(short, 40) and has_line_longer_than(short, 39)
    for cut in range(0, len(short), 37):
        longer = short[:cut] + "z" * 41 + "\n" + short[cut:]
        assert has_line_longer_than(longer, 40), cut
    assert looks_generated("x = 1\n" * 10 + "y" * (MINIFIED_LINE_CHARS + 1))
    assert not looks_generated("x = 1\n" * 10 + "y" * MINIFIED_LINE_CHARS)


@pytest.mark.parametrize("prefixes", [("#",), ("//",), ("#", "//")])
def test_comment_block_above_matches_the_line_list_version(prefixes: tuple[str, ...]) -> None:
    for text in random_texts(3000):
        lines = text.split("\n")
        line_start = 0
        for row, line in enumerate(lines):
            expected = leading_comment_block(lines, row, prefixes)
            assert comment_block_above(text, line_start, prefixes) == expected, (text, row)
            line_start += len(line) + 1


def test_comment_block_above_keeps_the_lines_in_order() -> None:
    text = "x = 1\n# one\n  # two\n\n# three\n#four\ndef f(): pass\n"
    start = text.index("def")
    assert comment_block_above(text, start, ("#",)) == "# three\n#four"
    assert comment_block_above(text, text.index("\n") + 1, ("#",)) is None


def test_head_lines_are_the_first_lines_that_splitlines_gives() -> None:
    rng = random.Random(3)
    pieces = ["", "a", "bb", "\r", "\n", "\r\n", "\x0c", "\u2028", "x\n", "\n\n"]
    for _ in range(20000):
        text = "".join(rng.choices(pieces, k=rng.randint(0, 14)))
        count, limit = rng.randint(0, 6), rng.randint(0, 30)
        assert head_lines(text, count, limit) == text[:limit].splitlines()[:count], (text, count)
