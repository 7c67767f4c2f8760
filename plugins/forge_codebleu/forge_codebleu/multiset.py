"""The one matching rule the syntax and data-flow components share: clipped multiset recall."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from typing import TypeVar

__all__ = ["clipped_share"]

T = TypeVar("T", bound=Hashable)


def clipped_share(reference: Counter[T], candidate: Counter[T]) -> float | None:
    """``sum min(ref, cand) / sum ref`` over multisets; None when the reference is empty."""
    total = sum(reference.values())
    if total == 0:
        return None
    return sum((reference & candidate).values()) / total
