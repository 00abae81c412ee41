"""Facts as token sequences: where the answer starts, where the field is read.

The same code serves the demo (its own BOS-prefixed tokenizer) and a
converted Llama (no BOS): both ship a ``tokenizer.json``, and ``encode`` with
special tokens gives exactly the ids the served model sees for a completion
prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer

from lokiserve.edit.facts import FactsError, continuation


@dataclass(frozen=True)
class Sequence:
    """``ids`` = prompt + answer; ``answer_start``: index of the first answer
    token; ``read_at``: the position whose memory query must find the fact."""

    ids: tuple[int, ...]
    answer_start: int
    read_at: int

    @property
    def answer(self) -> tuple[int, ...]:
        return self.ids[self.answer_start:]


class Codec:
    """Tokenizer glue for field writing and verification."""

    def __init__(self, tok: Tokenizer, max_tokens: int = 256):
        self.tok = tok
        self.max_tokens = max_tokens
        self._continues: torch.Tensor | None = None

    @classmethod
    def from_model_dir(cls, model_dir: str | Path) -> "Codec":
        return cls(Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json")))

    def prompt(self, text: str):
        return self.tok.encode(text, add_special_tokens=True)

    def sequence(self, prompt: str, answer: str | None, subject: str | None = None) -> Sequence:
        """prompt (+ answer) -> Sequence; the read position is the subject's
        last token when a subject is given (the token after it when that is
        the prompt's first), else the prompt's last token."""
        enc = self.prompt(prompt)
        p_ids = list(enc.ids)
        if not p_ids:
            raise FactsError(f"the prompt {prompt!r} encodes to no tokens")
        a_ids: list[int] = []
        if answer is not None:
            full = list(self.tok.encode(prompt + continuation(prompt, answer), add_special_tokens=True).ids)
            # BPE may merge across the boundary; then the answer is encoded on its own.
            a_ids = full[len(p_ids):] if full[:len(p_ids)] == p_ids else list(
                self.tok.encode(continuation(prompt, answer), add_special_tokens=False).ids)
            if not a_ids:
                raise FactsError(f"the answer {answer!r} encodes to no tokens")
        if len(p_ids) + len(a_ids) > self.max_tokens:
            raise FactsError(f"prompt + answer is {len(p_ids) + len(a_ids)} tokens (at most {self.max_tokens})")
        read_at = len(p_ids) - 1
        if subject is not None:
            start = prompt.find(subject)
            if start < 0:
                raise FactsError(f"subject {subject!r} does not occur in {prompt!r}")
            end = start + len(subject)  # the token holding the subject's last character
            hits = [i for i, (a, b) in enumerate(enc.offsets) if a < end <= b and b > a]
            read_at = hits[-1] if hits else read_at
            if read_at == 0 and len(p_ids) > 1:
                # A subject that opens a BOS-less prompt ends at position 0, the attention sink, whose
                # query carries no context (no key can fire there and only there): read it at the next
                # token, the first that attends to the subject.
                read_at = 1
        return Sequence(tuple(p_ids + a_ids), len(p_ids), read_at)

    def continues_word(self) -> torch.Tensor:
        """Per vocab id: would this token glue onto the answer's last word
        (so that the greedy output is a longer word, not the answer)?"""
        if self._continues is None:
            V = self.tok.get_vocab_size()
            out = torch.zeros(V, dtype=torch.bool)
            for i in range(V):
                s = self.tok.decode([i], skip_special_tokens=True)
                out[i] = bool(s) and (s[0].isalnum() or s[0] in "'-")
            self._continues = out
        return self._continues

    def decode(self, ids) -> str:
        return self.tok.decode(list(ids), skip_special_tokens=True)


def right_padded(seqs: list[tuple[int, ...]], pad: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) ids and mask, right-padded: real positions keep their index
    (and their RoPE position), padding is masked out of attention."""
    T = max(map(len, seqs))
    ids = torch.full((len(seqs), T), pad, dtype=torch.long)
    mask = torch.zeros(len(seqs), T, dtype=torch.bool)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = True
    return ids, mask


def batches(items: list, tokens_per_batch: int, length=len):
    """Consecutive chunks of at most ``tokens_per_batch`` padded tokens
    (items sorted by length by the caller keep padding small)."""
    chunk: list = []
    longest = 0
    for item in items:
        n = length(item)
        if chunk and max(longest, n) * (len(chunk) + 1) > tokens_per_batch:
            yield chunk
            chunk, longest = [], 0
        chunk.append(item)
        longest = max(longest, n)
    if chunk:
        yield chunk


__all__ = ["Codec", "Sequence", "right_padded", "batches"]
