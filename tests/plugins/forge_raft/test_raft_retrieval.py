"""BM25: tokens, scores (checked against rank-bm25), and the distractors it picks."""

from __future__ import annotations

import random

import numpy as np
import pytest

from forge_core.contracts import CodeUnit
from forge_raft.retrieval import BM25Index, Distractors, split_identifier, tokenize, unit_tokens


@pytest.mark.parametrize(
    ("word", "parts"),
    [
        ("parseHTTPHeader", ("parse", "http", "header")),
        ("snake_case_name", ("snake", "case", "name")),
        ("XMLParser2", ("xml", "parser", "2")),
        ("$scope", ("scope",)),
        ("__init__", ("init",)),
    ],
)
def test_split_identifier(word: str, parts: tuple[str, ...]) -> None:
    """camelCase, snake_case, acronyms and digits split the way a reader would."""
    assert split_identifier(word) == parts


def test_tokenize_keeps_compounds_and_drops_stopwords() -> None:
    """A compound counts whole and split; question words say nothing."""
    assert tokenize("What does `Stack.pushItem` in pkg/my_mod.py do?") == [
        "stack",
        "pushitem",
        "push",
        "item",
        "pkg",
        "my_mod",
        "my",
        "mod",
        "py",
    ]


def test_scores_match_rank_bm25(units: list[CodeUnit]) -> None:
    """Our inverted index gives BM25Okapi's scores exactly (same formula, same defaults)."""
    rank_bm25 = pytest.importorskip("rank_bm25")
    corpus = [unit_tokens(u) for u in units]
    ours = BM25Index(corpus)
    theirs = rank_bm25.BM25Okapi(corpus)
    for query in (
        tokenize("restock amount sku"),
        tokenize("How is `Cart.checkout` called?"),
        tokenize("func Transfer ledger go"),
        ["py", "py", "self"],  # repeated and very common terms
        ["nothing_matches_this"],
    ):
        assert np.allclose(ours.scores(query), theirs.get_scores(query))


def test_top_and_rank() -> None:
    """Top documents are best first, positive only, with exclusions; ranks are 1-based."""
    index = BM25Index([["a", "b"], ["a"], ["c", "c", "d"], ["b", "c"], ["d"], ["e", "a"]])
    assert index.top(["c"], 3) == [2, 3]
    assert index.top(["c"], 3, exclude={2}) == [3]
    assert index.top(["c"], 1) == [2]
    assert index.rank_of(["c"], {3}) == 2
    assert index.rank_of(["c", "d"], {2, 4}) == 1
    assert index.rank_of(["zzz"], {0}) is None


def test_distractors_never_reveal_the_oracle(units: list[CodeUnit]) -> None:
    """Not the oracle, not a copy of it, not its class or its methods, not a same-named twin."""
    distractors = Distractors(units)
    by_id = {u.id: u for u in units}
    rng = random.Random(0)
    copy = by_id["python/inventory/legacy.py::check_amount"]
    original = by_id["python/inventory/stock.py::check_amount"]
    assert copy.content_hash == original.content_hash
    for _ in range(20):
        assert copy not in distractors.pick(original, 3, [], rng)
    method = by_id["python/inventory/stock.py::Stock.restock"]
    related = {distractors.units[i].id for i in distractors.related(method)}
    assert related == {method.id, "python/inventory/stock.py::Stock"}
    for unit in units:
        for picked in distractors.pick(unit, 4, [], rng):
            assert picked.id != unit.id and picked.content_hash != unit.content_hash
            assert not (picked.path == unit.path and picked.qualified_name == unit.qualified_name)


def test_distractors_are_hard_negatives(units: list[CodeUnit]) -> None:
    """The top pick for a Go method comes from Go code about the same things."""
    distractors = Distractors(units)
    deposit = next(u for u in units if u.id == "go/ledger/ledger.go::(*Account).Deposit")
    neighbours = [distractors.units[i] for i in distractors.neighbours(deposit, 3)[:3]]
    assert any(n.id == "go/ledger/ledger.go::(*Account).Withdraw" for n in neighbours)


def test_pick_avoids_and_fills(units: list[CodeUnit]) -> None:
    """Avoided units (and their relatives) are left out; random units fill a short pool."""
    distractors = Distractors(units[:6])
    unit = distractors.units[0]
    avoid = distractors.units[1:3]
    picked = distractors.pick(unit, 10, avoid, random.Random(1))
    assert not {p.id for p in picked} & {a.id for a in avoid}
    assert unit not in picked
    assert len(picked) == len({p.id for p in picked}) == len(distractors.units) - 3
