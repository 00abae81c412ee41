"""Random names from the demo vocabulary's word pieces, for any-answer training.

A backbone trained only on its world's answer sets never emits most of its
vocabulary after a read: a field cannot make it say a new name (measured on
the first bound-slot demo: an unconstrained residual at either memory layer
left 10 of 16 new names' pieces at log p -6.8). Stating some facts' answers
as random names of word pieces during training makes every piece an answer
the backbone has read and said.
"""

from __future__ import annotations

import random
import re

from tokenizers import Tokenizer

_START = re.compile(r"^ [A-Za-z]+$")  # a piece that starts a word
_PART = re.compile(r"^[a-z]+$")  # a piece that continues one


class NameMaker:
    """Names of 1..``max_tokens`` tokens: a word-starting piece followed by
    lower-case pieces, kept when the tokenizer encodes `` name`` in at most
    ``max_tokens`` tokens."""

    def __init__(self, tok: Tokenizer, max_tokens: int):
        if max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        self.tok, self.max_tokens = tok, max_tokens
        vocab = [tok.decode([i]) for i in range(tok.get_vocab_size())]
        self.starts = sorted({v for v in vocab if _START.match(v)})
        self.parts = sorted({v for v in vocab if _PART.match(v)})
        if not self.starts or not self.parts:
            raise ValueError("the tokenizer has no word pieces to make names of")

    def name(self, rng: random.Random) -> str:
        """One name (without its leading space)."""
        for _ in range(100):
            k = rng.randint(1, self.max_tokens)
            name = rng.choice(self.starts) + "".join(rng.choice(self.parts) for _ in range(k - 1))
            if len(self.tok.encode(name, add_special_tokens=False).ids) <= self.max_tokens:
                return name.strip()
        return rng.choice(self.starts).strip()


__all__ = ["NameMaker"]
