"""The ``torch`` model backend: generate answers and score tokens with transformers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from forge_core.contracts import ChatMessage
from forge_torch.data import tokenize_conversation
from forge_torch.model import load_base_model, load_tokenizer, pick_placement


class TorchBackend:
    """A base model, optionally with a LoRA adapter merged in, on the best local device."""

    def __init__(self, model_path: str, adapter: str | None, options: dict[str, object]) -> None:
        self.placement = pick_placement(str(options.get("device", "auto")))
        tokenizer_source = (
            adapter
            if adapter and (Path(adapter) / "tokenizer_config.json").exists()
            else model_path
        )
        self.tokenizer = load_tokenizer(tokenizer_source)
        self.tokenizer.padding_side = "left"
        model: Any = load_base_model(model_path, self.placement)
        if adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
        self.model = model.eval()
        self.batch_size = int(str(options.get("batch_size", 8)))

    def new_token_room(self, prompt_tokens: int, wanted: int) -> int:
        """How many of ``wanted`` new tokens fit after ``prompt_tokens`` in the model's context.

        Past ``max_position_embeddings`` a model with learned positions fails and a rotary
        one answers from positions it never trained on: generation stops at the context.
        """
        context = getattr(self.model.config, "max_position_embeddings", None)
        if not isinstance(context, int) or context <= 0:
            return wanted
        return max(0, min(wanted, context - prompt_tokens))

    @staticmethod
    def _plain(conversation: Sequence[ChatMessage]) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.content} for m in conversation]

    @torch.no_grad()
    def generate(
        self,
        conversations: Sequence[Sequence[ChatMessage]],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
    ) -> list[str]:
        """Greedy (or sampled, with ``temperature`` > 0) answers, in order.

        Prompts are batched by token length (longest first): a batch is padded to its
        longest prompt, and its new tokens must fit the context after that prompt.
        """
        prompts = [
            self.tokenizer.apply_chat_template(
                self._plain(c), tokenize=False, add_generation_prompt=True
            )
            for c in conversations
        ]
        token_ids: list[list[int]] = (
            self.tokenizer(prompts, add_special_tokens=False)["input_ids"] if prompts else []
        )
        order = sorted(range(len(token_ids)), key=lambda index: -len(token_ids[index]))
        sampling = (
            {"do_sample": True, "temperature": temperature}
            if temperature > 0
            else {"do_sample": False}
        )
        answers: dict[int, str] = {}
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            room = self.new_token_room(max(len(token_ids[i]) for i in chunk), max_new_tokens)
            if room == 0:  # the prompts fill the model's context: nothing can follow
                answers.update((i, "") for i in chunk)
                continue
            padded = self.tokenizer.pad(
                {"input_ids": [token_ids[i] for i in chunk]}, return_tensors="pt"
            )
            encoded: dict[str, torch.Tensor] = {
                k: v.to(self.placement.device) for k, v in padded.items()
            }
            output = self.model.generate(
                **encoded,
                max_new_tokens=room,
                pad_token_id=self.tokenizer.pad_token_id,
                **sampling,
            )
            new_tokens = output[:, encoded["input_ids"].shape[1] :]
            decoded = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            answers.update(zip(chunk, decoded, strict=True))
        return [answers[i].strip() for i in range(len(token_ids))]

    @torch.no_grad()
    def score(self, conversations: Sequence[Sequence[ChatMessage]]) -> list[list[float]]:
        """Log-probabilities of each token of each conversation's last message."""
        results: list[list[float]] = []
        for conversation in conversations:
            example = tokenize_conversation(self.tokenizer, self._plain(conversation))
            ids = torch.tensor([example.input_ids], device=self.placement.device)
            logits = self.model(input_ids=ids).logits[0, :-1].float()
            logprobs = torch.log_softmax(logits, dim=-1)
            targets = ids[0, 1:]
            picked = logprobs.gather(1, targets[:, None])[:, 0]
            mask = torch.tensor(example.labels[1:], device=picked.device) != -100
            results.append(picked[mask].tolist())
        return results

    def close(self) -> None:
        """Free the model."""
        del self.model
        if self.placement.device.type == "cuda":
            torch.cuda.empty_cache()


def load_torch_backend(model: str, adapter: str | None, options: dict[str, object]) -> TorchBackend:
    """The :class:`~forge_core.backends.ModelBackendSpec` factory."""
    return TorchBackend(model, adapter, options)
