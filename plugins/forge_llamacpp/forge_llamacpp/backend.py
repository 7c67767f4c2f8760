"""The ``llamacpp`` model backend: evaluate an exported GGUF in-process with llama-cpp-python.

Chats are formatted with the GGUF's own chat template (``tokenizer.chat_template``),
rendered the way llama-cpp-python's server renders it, so evaluation sees what
the deployed model sees. Scoring follows forge_torch's convention: the prompt is
the conversation without its last message plus the generation prompt; the
scored tokens are the rest of the full rendering (the answer and its
end-of-turn tokens), tokenised separately from the prompt.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from forge_core.contracts import ChatMessage
from forge_llamacpp.deploy import DEFAULT_MAX_CONTEXT
from forge_llamacpp.gguf import inspect_gguf
from forge_llamacpp.logs import route_llama_cpp_log
from forge_llamacpp.server import GGUF_CHAT_FORMAT


class LlamaCppBackend:
    """A GGUF loaded with ``logits_all`` so every position's log-probs can be read."""

    def __init__(self, model_path: str, adapter: str | None, options: dict[str, object]) -> None:
        if adapter:
            raise ValueError(
                "the llamacpp backend runs merged GGUF files and cannot apply an adapter; "
                "export the adapter into a GGUF first (forge export)"
            )
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        route_llama_cpp_log()  # llama.cpp's errors shown as errors, its warnings not

        facts = inspect_gguf(Path(model_path))
        if facts.chat_template is None:
            raise ValueError(f"{model_path} has no chat template (tokenizer.chat_template)")
        n_ctx = int(str(options.get("n_ctx") or 0)) or min(
            facts.context_length or DEFAULT_MAX_CONTEXT, DEFAULT_MAX_CONTEXT
        )
        threads = int(str(options.get("threads") or 0)) or max(1, (os.cpu_count() or 2) // 2)
        self.llm: Any = Llama(  # llama_cpp's typing is partial; used duck-typed
            model_path=model_path,
            n_ctx=n_ctx,
            logits_all=True,
            verbose=False,
            n_threads=threads,
            seed=int(str(options.get("seed", 0))),
            chat_format=GGUF_CHAT_FORMAT,  # the GGUF's template, as the server is told to
        )
        self.facts = facts
        self.formatters: dict[bool, Any] = {
            generation: Jinja2ChatFormatter(
                template=facts.chat_template,
                eos_token=facts.eos_token,
                bos_token=facts.bos_token,
                add_generation_prompt=generation,
            )
            for generation in (True, False)
        }

    @staticmethod
    def _plain(conversation: Sequence[ChatMessage]) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.content} for m in conversation]

    def render(self, messages: list[dict[str, str]], *, generation_prompt: bool) -> str:
        """The text the GGUF's chat template makes of ``messages``."""
        formatted = self.formatters[generation_prompt](messages=messages)
        return str(formatted.prompt)

    def generate(
        self,
        conversations: Sequence[Sequence[ChatMessage]],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
    ) -> list[str]:
        """Answer each conversation (greedy at temperature 0); stops at the end-of-turn token."""
        answers = []
        for conversation in conversations:
            response: Any = self.llm.create_chat_completion(
                messages=self._plain(conversation),
                max_tokens=max_new_tokens,
                temperature=temperature,
            )
            answers.append(str(response["choices"][0]["message"]["content"] or "").strip())
        return answers

    def tokens_to_score(self, conversation: Sequence[ChatMessage]) -> tuple[list[int], int]:
        """All token ids, and how many of them are the prompt (not scored)."""
        messages = self._plain(conversation)
        if not messages or messages[-1]["role"] != "assistant":
            raise ValueError("a scored conversation must end with the assistant's message")
        prompt = self.render(messages[:-1], generation_prompt=True)
        full = self.render(messages, generation_prompt=False)
        if not full.startswith(prompt):
            raise ValueError(
                "the chat template renders the prompt differently with and without the "
                "answer; Forge cannot find where the answer starts"
            )
        prompt_ids = self.llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        answer_ids = self.llm.tokenize(
            full[len(prompt) :].encode("utf-8"), add_bos=False, special=True
        )
        return [*prompt_ids, *answer_ids], len(prompt_ids)

    def score(self, conversations: Sequence[Sequence[ChatMessage]]) -> list[list[float]]:
        """Log-probabilities of each token of each conversation's last message."""
        results = []
        for conversation in conversations:
            ids, prompt_length = self.tokens_to_score(conversation)
            if len(ids) > self.llm.n_ctx():
                raise ValueError(
                    f"the conversation has {len(ids)} tokens, more than the context "
                    f"({self.llm.n_ctx()}); pass a larger n_ctx to the backend"
                )
            if prompt_length == 0:
                raise ValueError("the prompt renders to no tokens; nothing predicts the answer")
            self.llm.reset()
            self.llm.eval(ids)
            logits = np.asarray(self.llm.scores[: len(ids)], dtype=np.float64)
            # position p predicts token p + 1: the answer starts at prompt_length
            rows = logits[prompt_length - 1 : len(ids) - 1]
            shifted = rows - rows.max(axis=1, keepdims=True)
            log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            targets = np.asarray(ids[prompt_length:])
            results.append(log_probs[np.arange(len(targets)), targets].tolist())
        return results

    def close(self) -> None:
        """Free the model."""
        self.llm.close()


def load_llamacpp_backend(
    model: str, adapter: str | None, options: dict[str, object]
) -> LlamaCppBackend:
    """The :class:`~forge_core.backends.ModelBackendSpec` factory."""
    return LlamaCppBackend(model, adapter, options)
