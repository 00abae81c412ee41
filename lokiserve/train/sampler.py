"""Training sequences and per-sequence field decisions, from one seeded RNG.

Bound slots (``bound_slots``): fact *i* of a domain lives in slot *i* of its
field, and every step states a new random world (``redraw``: each fact gets a
random answer of its relation), which the field's values follow. Field
decisions per sequence: its own field is zeroed with p = ``zero_own`` (it must
then abstain), every other field is dropped with p = ``drop_other`` (the
reserve with ``drop_reserve``), so that no domain leans on a foreign field.
"""

from __future__ import annotations

import random

import torch

from lokiserve.train.config import TrainConfig
from lokiserve.train.data import Encoder, Sequence, fact_sequence, language_sequence
from lokiserve.train.world import RESERVE_FIELD, AnswerRedrawer, Fact, World


class Sampler:
    """Draws training sequences and field decisions from one seeded RNG."""

    def __init__(self, world: World, enc: Encoder, cfg: TrainConfig, field_of: dict[str, int]):
        self.world, self.enc, self.cfg, self.field_of = world, enc, cfg, field_of
        self.rng = random.Random(f"{cfg.seed}:sampler")
        self.facts = world.facts
        self.by_domain = {d: world.by_domain(d) for d in world.domains}
        self.practice: list[Fact] = []  # the reserve field's practice domain (redrawn every practice round)
        self.redrawer = AnswerRedrawer()
        self.current: dict[str, list[Fact]] = self.by_domain  # the world this step states
        self.practice_current: list[Fact] = []
        self.names = None
        if cfg.name_share > 0:
            from lokiserve.train.names import NameMaker

            self.names = NameMaker(enc.tok, cfg.answer_tokens)

    def redraw(self) -> None:
        """A fresh random world: every fact gets a random answer of its relation."""
        kw = {"names": self.names, "name_share": self.cfg.name_share}
        self.current = {d: self.redrawer.redraw(facts, self.rng, **kw) for d, facts in self.by_domain.items()}
        self.practice_current = self.redrawer.redraw(self.practice, self.rng, **kw) if self.practice else []

    def bound_worlds(self, real: bool = False) -> dict[int, list[Fact]]:
        """Field index -> the facts in its slots (the current random world, or the real one)."""
        worlds = self.by_domain if real else self.current
        out = {self.field_of[facts[0].field]: facts for facts in worlds.values()}
        practice = self.practice if real else self.practice_current
        if practice:
            out[self.field_of[RESERVE_FIELD]] = practice
        return out

    def _bound_sequence(self, pool: list[Fact], fidx: int) -> Sequence:
        rng = self.rng
        idx = [rng.randrange(len(pool))]
        if rng.random() < self.cfg.p_two_facts:
            idx.append(rng.randrange(len(pool)))
        conn = rng.choice(self.world.connectives) if rng.random() < self.cfg.p_connective else None
        return fact_sequence(self.enc, [pool[i] for i in idx], fidx, rng, connective=conn, slots=idx,
                             answer_tokens=self.cfg.answer_tokens)

    def sequence(self) -> Sequence:
        cfg, rng = self.cfg, self.rng
        if rng.random() < cfg.p_language:
            return language_sequence(self.enc, rng.sample(self.world.connectives, rng.randint(1, 3)))
        if self.practice and rng.random() < cfg.practice_share:
            return self._bound_sequence(self.practice_current, self.field_of[RESERVE_FIELD])
        f = rng.choice(self.facts)
        return self._bound_sequence(self.current[f.domain], self.field_of[f.field])

    def batch(self, batch_size: int, num_fields: int, reserve: int) -> tuple[list[Sequence], torch.Tensor]:
        """Sequences and their field scale (B, F): 0 = that field is off for that sequence."""
        cfg, rng = self.cfg, self.rng
        seqs = [self.sequence() for _ in range(batch_size)]
        scale = torch.ones(batch_size, num_fields)
        for b, s in enumerate(seqs):
            for f in range(num_fields):
                if f == s.field:
                    if rng.random() < cfg.zero_own:
                        scale[b, f] = 0.0
                elif rng.random() < (cfg.drop_reserve if f == reserve else cfg.drop_other):
                    scale[b, f] = 0.0
            if not self.practice:
                scale[b, reserve] = 0.0
        return seqs, scale


__all__ = ["Sampler"]
