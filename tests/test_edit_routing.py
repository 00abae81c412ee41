"""Fitted keys (``lokiserve.edit.routing.fit_keys``) against empty slots and
against a field's trained keys (``rivals``: a bound-slot field, where every
slot has a key that scores, so a new key must beat them, not 0)."""

from __future__ import annotations

import math

import torch

from lokiserve.edit.routing import RoutingConfig, fit_keys


def _problem(seed=0, M=600, H=2, d=16, n=3):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(M, H, d, generator=g)
    positives = []
    for i in range(n):  # each key's rows share a direction no other row has
        rows = torch.arange(10 * i, 10 * i + 3)
        q[rows] += 6 * torch.nn.functional.one_hot(torch.tensor(i), d).float()
        positives.append(rows)
    return q, positives, [p.clone() for p in positives]


def _excess(q, keys, floor):
    return (torch.einsum("mhd,nd->nmh", q, keys) / math.sqrt(q.shape[-1]) - floor).amax(-1)


def test_zero_rivals_are_the_empty_slots():
    q, pos, ex = _problem()
    cfg = RoutingConfig(steps=60, mine_every=10)
    plain, _ = fit_keys(q, pos, ex, cfg)
    zero = torch.zeros(q.shape[:2])
    same, _ = fit_keys(q, pos, ex, cfg, rivals=(zero, zero))
    assert torch.equal(plain, same)


def test_a_key_fitted_against_rivals_beats_the_best_at_its_rows_and_stays_below_the_kth_elsewhere():
    q, pos, ex = _problem()
    g = torch.Generator().manual_seed(1)
    best = 4.0 + torch.rand(q.shape[:2], generator=g)  # trained keys score 4-5 everywhere
    kth = best - 1.0
    # fp32 throughout: the margins here are 1-2 on scores of 5 (real ones are 6-8), within bf16's rounding
    cfg = RoutingConfig(steps=300, margin=2.0, negative_margin=1.0, negatives_dtype=torch.float32)
    keys, stats = fit_keys(q, pos, ex, cfg, rivals=(best, kth))
    assert stats["separated"] == len(pos), stats
    for i, rows in enumerate(pos):
        assert bool((_excess(q[rows], keys[i:i + 1], best[rows]) > 0).all())  # wins the softmax where it is read
        others = torch.ones(len(q), dtype=torch.bool)
        others[rows] = False
        assert bool((_excess(q[others], keys[i:i + 1], kth[others]) < 0).all())  # never selected elsewhere
    # fitted as if the slots were empty, keys clear 0 by the margin but not the rivals where they must be read
    plain, _ = fit_keys(q, pos, ex, RoutingConfig(steps=300, margin=2.0, negative_margin=1.0))
    assert not all(bool((_excess(q[r], plain[i:i + 1], best[r]) > 0).all()) for i, r in enumerate(pos))


def test_negatives_held_in_bf16_between_minings_give_nearly_the_same_keys_and_scores():
    """``RoutingConfig.negatives_dtype``: the steps read the mined negatives
    in bf16 (memory-bound at 1,000 keys); mining and the reported scores stay
    fp32, so the keys and their worst scores move little (on SmolLM2's 1,000
    real edits: keys 1% apart, 805 separated either way)."""
    q, pos, ex = _problem(seed=3)
    cfg = dict(steps=200, margin=4.0, negative_margin=2.0)
    exact, s32 = fit_keys(q, pos, ex, RoutingConfig(**cfg, negatives_dtype=torch.float32))
    low, s16 = fit_keys(q, pos, ex, RoutingConfig(**cfg, negatives_dtype=torch.bfloat16))
    assert not torch.equal(exact, low)  # it did run in bf16
    assert float(((exact - low).norm(dim=1) / exact.norm(dim=1)).max()) < 0.1
    assert abs(s32["negative_max"] - s16["negative_max"]) < 0.2 and abs(s32["positive_min"] - s16["positive_min"]) < 0.2
