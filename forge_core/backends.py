"""Model backends: the interface evaluation and chat use to run a model.

A backend plugin (forge_torch, forge_llamacpp) registers a
:class:`ModelBackendSpec` whose factory loads a model and returns an object
following :class:`ModelBackend`. The factory imports its heavy libraries
lazily, so registering a backend costs nothing until it is used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from forge_core.contracts import ChatMessage


@runtime_checkable
class ModelBackend(Protocol):
    """A loaded model that can answer chats and score text."""

    def generate(
        self,
        conversations: Sequence[Sequence[ChatMessage]],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
    ) -> list[str]:
        """Answer each conversation with the assistant's next message."""
        ...

    def score(self, conversations: Sequence[Sequence[ChatMessage]]) -> list[list[float]]:
        """Return the log-prob of each token of each conversation's last message."""
        ...

    def close(self) -> None:
        """Release the model's memory or processes."""
        ...


@dataclass(frozen=True)
class ModelBackendSpec:
    """A named way to load a model.

    ``load(model, adapter, options)`` takes the base model path (or a GGUF
    file for file-based backends), an optional adapter directory and free
    options, and returns a :class:`ModelBackend`.
    """

    name: str
    load: Callable[[str, str | None, dict[str, object]], ModelBackend]
    description: str = ""
    formats: tuple[str, ...] = field(default=("hf",))
