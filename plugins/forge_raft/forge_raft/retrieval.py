"""BM25 over code units: hard-negative distractors, and the retrieval benchmark.

Each unit becomes a bag of words made of its split identifiers
(``parseHTTPHeader`` → ``parse``, ``http``, ``header`` and ``parsehttpheader``),
its documentation words and its path. The qualified name counts
``NAME_WEIGHT`` times, because that is what a question names.

Scoring is Okapi BM25 with the exact formula and defaults of the ``rank-bm25``
package (``BM25Okapi``: k1 = 1.5, b = 0.75, negative IDFs floored at
epsilon × mean IDF); the tests check the scores against it. The index is our
own inverted index because ``BM25Okapi.get_scores`` walks every document for
every query term in Python, which is too slow for one query per example over
tens of thousands of units (see the README's figures).
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np

from forge_core.contracts import CodeUnit
from forge_raft.code import unit_text

__all__ = ["BM25Index", "Distractors", "tokenize", "unit_tokens"]

WORD = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*|[0-9]+")
CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
#: Words that say nothing about which unit is meant.
STOPWORDS = frozenset(
    {
        *("a", "an", "and", "are", "as", "at", "be", "by", "do", "does", "for", "from", "if"),
        *("in", "into", "is", "it", "its", "of", "on", "or", "the", "this", "to", "with"),
        *("what", "which", "how", "where", "when", "why", "who", "that"),
    }
)
NAME_WEIGHT = 3
#: Long units are indexed by their first characters: enough to name what they do.
MAX_INDEXED_CHARS = 6000
#: Extra neighbours fetched so that leaving some out still leaves enough.
POOL_MARGIN = 24
#: Words of a unit used to look for its neighbours.
MAX_QUERY_TERMS = 64
#: Neighbours fetched (and remembered) per unit at least.
MIN_NEIGHBOURS = 48


@lru_cache(maxsize=1 << 18)
def split_identifier(word: str) -> tuple[str, ...]:
    """``parse_HTTPHeader2`` → ``parse``, ``http``, ``header``, ``2`` (lower case)."""
    return tuple(p.lower() for chunk in re.split(r"[_$]+", word) for p in CAMEL.findall(chunk))


def tokenize(text: str) -> list[str]:
    """Words of ``text`` with identifiers split; a compound also counts whole."""
    tokens: list[str] = []
    for word in WORD.findall(text):
        parts = split_identifier(word)
        whole = word.lower().strip("_$")
        if len(parts) > 1 and whole:
            tokens.append(whole)
        tokens.extend(parts)
    return [t for t in tokens if len(t) > 1 and t not in STOPWORDS]


def unit_tokens(unit: CodeUnit) -> list[str]:
    """The bag of words BM25 indexes for one unit."""
    name = tokenize(unit.qualified_name.replace(".", " "))
    text = unit_text(unit)[:MAX_INDEXED_CHARS]
    return name * NAME_WEIGHT + tokenize(unit.path) + tokenize(text)


class BM25Index:
    """An inverted index scored with Okapi BM25 (``rank-bm25``'s ``BM25Okapi`` formula)."""

    def __init__(
        self,
        corpus: Sequence[Sequence[str]],
        k1: float = 1.5,
        b: float = 0.75,
        epsilon: float = 0.25,
    ) -> None:
        self.size = len(corpus)
        self.lengths = np.array([len(doc) for doc in corpus], dtype=np.float64)
        average = float(self.lengths.mean()) if self.size else 0.0
        postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for index, doc in enumerate(corpus):
            for term, count in Counter(doc).items():
                postings[term].append((index, count))
        idf = {
            term: math.log(self.size - len(p) + 0.5) - math.log(len(p) + 0.5)
            for term, p in postings.items()
        }
        floor = epsilon * (sum(idf.values()) / len(idf)) if idf else 0.0
        norm = k1 * (1 - b + b * self.lengths / average) if average else self.lengths
        self._weights: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for term, pairs in postings.items():
            docs = np.fromiter((d for d, _ in pairs), dtype=np.int64, count=len(pairs))
            freq = np.fromiter((f for _, f in pairs), dtype=np.float64, count=len(pairs))
            weight = idf[term] if idf[term] >= 0 else floor
            self._weights[term] = (docs, weight * freq * (k1 + 1) / (freq + norm[docs]))

    def scores(self, query: Iterable[str]) -> np.ndarray:
        """The BM25 score of every document for ``query`` (repeated terms count again)."""
        total = np.zeros(self.size, dtype=np.float64)
        for term in query:
            entry = self._weights.get(term)
            if entry is not None:
                total[entry[0]] += entry[1]
        return total

    def top(
        self, query: Iterable[str], count: int, exclude: frozenset[int] | set[int] = frozenset()
    ) -> list[int]:
        """Indices of the ``count`` best-scoring documents with a positive score, best first."""
        scores = self.scores(query)
        wanted = min(self.size, count + len(exclude))
        if wanted <= 0:
            return []
        candidates = np.argpartition(-scores, wanted - 1)[:wanted]
        ordered = sorted(candidates.tolist(), key=lambda i: (-scores[i], i))
        return [i for i in ordered if scores[i] > 0 and i not in exclude][:count]

    def rank_of(self, query: Iterable[str], targets: set[int]) -> int | None:
        """1-based rank of the best-placed target (ties broken by index); None if unscored."""
        scores = self.scores(query)
        best = max(targets, key=lambda i: (scores[i], -i))
        if scores[best] <= 0:
            return None
        ahead = int(np.sum(scores > scores[best])) + int(np.sum(scores[:best] == scores[best]))
        return ahead + 1


class Distractors:
    """Hard negatives for an oracle: its BM25 neighbours that do not reveal it.

    Never offered: the oracle itself, units with the same content hash, units
    of the same file whose span holds the oracle or lies inside it (a class and
    its methods show each other's code), and same-named units of the same file
    (a getter and its setter). Units with syntax errors or generated code are
    not used as documents at all.
    """

    def __init__(self, units: Sequence[CodeUnit]) -> None:
        self.units = [
            u for u in units if not u.quality.has_syntax_error and not u.quality.looks_generated
        ]
        self.tokens = [unit_tokens(u) for u in self.units]
        self.index = BM25Index(self.tokens)
        self.position = {u.id: i for i, u in enumerate(self.units)}
        self._by_hash: dict[str, list[int]] = defaultdict(list)
        self._by_path: dict[str, list[int]] = defaultdict(list)
        for i, unit in enumerate(self.units):
            self._by_hash[unit.content_hash].append(i)
            self._by_path[unit.path].append(i)
        self._neighbours: dict[str, list[int]] = {}
        self._related: dict[str, set[int]] = {}

    def related(self, unit: CodeUnit) -> set[int]:
        """Indices of the units that would show ``unit``'s code or be mistaken for it."""
        cached = self._related.get(unit.id)
        if cached is not None:
            return cached
        found = set(self._by_hash.get(unit.content_hash, []))
        for i in self._by_path.get(unit.path, []):
            other = self.units[i]
            if (
                other.qualified_name == unit.qualified_name
                or other.start_byte <= unit.start_byte <= unit.end_byte <= other.end_byte
                or unit.start_byte <= other.start_byte <= other.end_byte <= unit.end_byte
            ):
                found.add(i)
        if unit.id in self.position:
            found.add(self.position[unit.id])
        self._related[unit.id] = found
        return found

    def neighbours(self, unit: CodeUnit, count: int) -> list[int]:
        """The best BM25 matches of ``unit`` (at least ``count``) that are not related to it.

        The query is the unit's first ``MAX_QUERY_TERMS`` distinct words: its
        name, path, signature and documentation come first in its bag of words,
        which is what a similar-looking unit shares; the rest of a long body
        would add cost and mostly common words.
        """
        cached = self._neighbours.get(unit.id)
        if cached is None or len(cached) < count:
            position = self.position.get(unit.id)
            words = self.tokens[position] if position is not None else unit_tokens(unit)
            query = list(dict.fromkeys(words))[:MAX_QUERY_TERMS]
            wanted = max(count, MIN_NEIGHBOURS)
            cached = self.index.top(query, wanted, exclude=self.related(unit))
            self._neighbours[unit.id] = cached
        return cached

    def pick(
        self, unit: CodeUnit, count: int, avoid: Iterable[CodeUnit], rng: random.Random
    ) -> list[CodeUnit]:
        """``count`` distractors for ``unit``: drawn from its top 2×count neighbours.

        Units related to ``avoid`` (the other documents the answer quotes, or
        units that would make the answer incomplete) are left out too. When BM25
        finds too few, random units fill the rest.
        """
        if count <= 0:
            return []
        excluded = set(self.related(unit))
        for other in avoid:
            excluded |= self.related(other)
        pool_size = 2 * count
        pool = [i for i in self.neighbours(unit, pool_size + POOL_MARGIN) if i not in excluded][
            :pool_size
        ]
        chosen = sorted(rng.sample(pool, min(count, len(pool))), key=pool.index)
        if len(chosen) < count:
            rest = [i for i in range(len(self.units)) if i not in excluded and i not in chosen]
            chosen += rng.sample(rest, min(count - len(chosen), len(rest)))
        return [self.units[i] for i in chosen]
