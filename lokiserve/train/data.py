"""Turning facts into weighted, field-routed training batches.

A training sequence is ``<s> [connective] sentence [sentence] </s>`` where every
sentence is one phrasing of a fact. Each token carries a loss weight (answer
tokens 1, other text ``text_weight``) and each sequence carries the field it
belongs to (``-1``: plain language, no field). ``make_batch`` turns a list of
sequences plus per-field decisions (dropped / own field zeroed) into tensors.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass

import torch
from tokenizers import Tokenizer

from lokiserve.train.tokenizer import encode, special_ids
from lokiserve.train.world import Fact


@dataclass
class Piece:
    """One tokenised sentence: ids and which of them are answer tokens."""

    ids: list[int]
    answer: list[bool]


class Encoder:
    """Caches the tokenisation of every sentence of every fact."""

    def __init__(self, tok: Tokenizer):
        self.tok = tok
        self.special = special_ids(tok)
        self._cache: dict[tuple[str, str, str], Piece] = {}
        self._text: dict[str, list[int]] = {}

    def sentence(self, before: str, answer: str, after: str, lead_space: bool = False) -> Piece:
        key = (("\x00" if lead_space else "") + before, answer, after)
        piece = self._cache.get(key)
        if piece is None:
            b = encode(self.tok, (" " if lead_space else "") + before)
            a = encode(self.tok, answer)
            af = encode(self.tok, after) if after else []
            piece = Piece(b + a + af, [False] * len(b) + [True] * len(a) + [False] * len(af))
            self._cache[key] = piece
        return piece

    def text(self, text: str) -> list[int]:
        ids = self._text.get(text)
        if ids is None:
            ids = self._text[text] = encode(self.tok, text)
        return ids


@dataclass
class Sequence:
    ids: list[int]
    answer: list[bool]
    field: int  # -1 = language only
    # bound slots: (position that predicts a fact's first answer token, the fact's slot in its field)
    slots: list[tuple[int, int]] = dataclasses.field(default_factory=list)


def fact_sequence(enc: Encoder, facts: list[Fact], field: int, rng: random.Random,
                  connective: str | None = None, template: int | None = None,
                  slots: list[int] | None = None, answer_tokens: int = 1) -> Sequence:
    """``<s> [connective] fact sentence(s) </s>`` for one or more facts of one field.
    ``slots``: each fact's slot in the field (bound-slot training), recorded at the
    position that predicts the fact's answer, and with ``answer_tokens`` J > 1 at
    the positions that predict its next J - 1 answer tokens too (every one of
    them reads the slot that lists them)."""
    ids = [enc.special["bos"]]
    ans = [False]
    bound: list[tuple[int, int]] = []
    if connective:
        c = enc.text(connective)
        ids += c
        ans += [False] * len(c)
    for i, f in enumerate(facts):
        t = template if template is not None else rng.randrange(len(f.sentences))
        b, a, af = f.sentences[t % len(f.sentences)]
        piece = enc.sentence(b, a, af, lead_space=bool(connective) or i > 0)
        if slots is not None:
            first = piece.answer.index(True)
            n_answer = sum(piece.answer)
            bound += [(len(ids) + first + j - 1, slots[i]) for j in range(min(answer_tokens, n_answer))]
        ids += piece.ids
        ans += piece.answer
    ids.append(enc.special["eos"])
    ans.append(False)
    return Sequence(ids, ans, field, bound)


def language_sequence(enc: Encoder, sentences: list[str]) -> Sequence:
    ids = [enc.special["bos"]]
    for i, s in enumerate(sentences):
        ids += enc.text((" " if i else "") + s)
    ids.append(enc.special["eos"])
    return Sequence(ids, [False] * len(ids), -1)


def make_batch(
    seqs: list[Sequence],
    num_fields: int,
    pad_id: int,
    abstain_id: int,
    field_scale: torch.Tensor,
    text_weight: float,
) -> dict[str, torch.Tensor]:
    """Right-padded ids, next-token targets and loss weights.

    ``field_scale`` (B, F): when a sequence's own field is 0 there, the target of
    the first token of every answer becomes <abstain> and the rest of that answer
    carries no loss: the backbone must not know facts by itself.
    """
    B = len(seqs)
    T = max(len(s.ids) for s in seqs)
    ids = torch.full((B, T), pad_id, dtype=torch.long)
    targets = torch.full((B, T), pad_id, dtype=torch.long)
    weights = torch.zeros(B, T)
    grad_fields = torch.zeros(B, num_fields, dtype=torch.bool)
    slot_targets = torch.full((B, T), -1, dtype=torch.long)
    for b, s in enumerate(seqs):
        for t, slot in s.slots:
            slot_targets[b, t] = slot
        n = len(s.ids)
        ids[b, :n] = torch.tensor(s.ids)
        # position t predicts token t+1
        targets[b, : n - 1] = ids[b, 1:n]
        own_zeroed = s.field >= 0 and float(field_scale[b, s.field]) == 0.0
        if s.field >= 0:
            grad_fields[b, s.field] = True
        prev_answer = False
        for t in range(n - 1):
            is_answer = s.answer[t + 1]
            if is_answer:
                if own_zeroed:
                    if not prev_answer:
                        targets[b, t] = abstain_id
                        weights[b, t] = 1.0
                else:
                    weights[b, t] = 1.0
            elif not (own_zeroed and prev_answer):
                weights[b, t] = text_weight
            prev_answer = is_answer
    mask = torch.zeros(B, T, dtype=torch.bool)
    for b, s in enumerate(seqs):
        mask[b, : len(s.ids)] = True
    return {"input_ids": ids, "targets": targets, "weights": weights, "grad_fields": grad_fields, "mask": mask,
            "slot_targets": slot_targets}


def weighted_loss(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                           reduction="none").view_as(weights)
    return (ce * weights).sum() / weights.sum().clamp(min=1e-6)
