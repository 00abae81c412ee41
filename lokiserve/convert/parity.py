"""Logit and greedy-token comparison of two causal LMs on the same token ids:
the check a conversion runs on itself before it is renamed into place, and
what the tests measure on more prompts."""

from __future__ import annotations

import torch

FLOAT32_TOLERANCE = 1e-3  # max |logit difference|; measured ~1e-5 on SmolLM2-135M (see tests)


@torch.no_grad()
def logits(model, ids: list[int]) -> torch.Tensor:
    """(T, V) float32 logits of one unpadded sequence."""
    x = torch.tensor([ids])
    return model(input_ids=x, attention_mask=torch.ones_like(x)).logits[0].float()


@torch.no_grad()
def max_logit_diff(reference, candidate, prompts: list[list[int]]) -> float:
    """Largest |logit difference| over every position of every prompt."""
    return max(float((logits(reference, ids) - logits(candidate, ids)).abs().max()) for ids in prompts)


@torch.no_grad()
def greedy_tokens(model, ids: list[int], new_tokens: int) -> list[int]:
    """Greedy continuation by re-running the full prefix each step: no cache,
    so it compares the models' math, not their cache implementations."""
    seq = list(ids)
    for _ in range(new_tokens):
        seq.append(int(logits(model, seq)[-1].argmax()))
    return seq[len(ids):]


def prompt_ids(tokenizer, texts: list[str], chats: list[str] = ()) -> list[list[int]]:
    """Token ids of plain texts, plus chat-formatted user turns when the
    tokenizer has a chat template."""
    out = [tokenizer(t)["input_ids"] for t in texts]
    if chats and getattr(tokenizer, "chat_template", None):
        for c in chats:
            ids = tokenizer.apply_chat_template([{"role": "user", "content": c}], add_generation_prompt=True, tokenize=True)
            out.append(list(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids))
    return out


__all__ = ["FLOAT32_TOLERANCE", "logits", "max_logit_diff", "greedy_tokens", "prompt_ids"]
