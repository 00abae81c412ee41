"""Keys that fire on a fact's read position and nowhere else.

An empty slot (key 0, value 0) scores exactly 0 against every query. A
field whose fact keys all score below 0 on a query therefore retrieves only
empty slots there and adds exactly 0: that is the null slot, and it is what
keeps unrelated text bit-for-bit unchanged. A fact slot must score well
above 0 at its read position (so that it wins the top-k softmax against the
empty slots, weight ``1 / (1 + (k-1) e^-margin)``) and below 0 everywhere
else.

A fixed similarity radius (GRACE) cannot do this on a real model: measured
on SmolLM2 (design section 7), paraphrases and neighbours are not separated
by cosine. So each key is *fitted*, per KMM layer: a linear classifier on
the frozen model's queries, with the fact's prompt and given paraphrases as
positives and every other position of every text the writer has
(neighbours, the other facts, a retain text) as negatives, hardest
negatives mined by exact scores. A fact is read by whichever of the layer's
heads separates it best (a key is shared by all heads of the layer; each
head projects its own query).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class RoutingConfig:
    margin: float = 8.0  # positive score (after 1/sqrt(d_k)): the fact's softmax weight ~ 1/(1+3e^-8)
    # How far below 0 a negative must score. Held-out text scores nearer 0 than the fitted negatives: measured
    # on SmolLM2, 100 edits, the worst held-out position ("My brother") scored 1.11 at 2.0 (3 of 207 next
    # tokens changed, refused), 0.14 at 4.0 (2 changed), -0.68 at 6.0 (none); efficacy and paraphrases alike.
    negative_margin: float = 6.0
    positive_weight: float = 3.0
    steps: int = 600
    lr: float = 0.05
    l2: float = 1e-4
    # Measured on SmolLM2's 1,000 real edits (the key fit alone): every 25 steps 55.9 s, every 50 steps 43.0 s,
    # 805 and 806 keys separated
    mine_every: int = 50
    hard_negatives: int = 256
    hinge_negatives: int = 128  # the hardest this many per key enter each step's loss
    # The mined negatives' queries as stored between minings, where each step reads all of them (memory-bound):
    # None: bf16 where the CPU has it natively (AMX or AVX512-BF16), else fp32. Mining and the final check of
    # every score stay fp32. SmolLM2, 1,000 edits: 55.9 s -> 42.9 s, the keys 1% apart, 805 separated in both.
    negatives_dtype: torch.dtype | None = None


def native_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AMX tiles or AVX512-BF16).
    Where it has AMX, this process is granted it too: Linux grants AMX per
    process on request, and a bf16 matmul without it dies with "Illegal
    instruction" (see VLLM_NOTES)."""
    amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
    if amx and hasattr(torch.cpu, "_init_amx"):
        torch.cpu._init_amx()
    return amx or getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()


def _scores(q: torch.Tensor, keys: torch.Tensor, floor: torch.Tensor | None = None) -> torch.Tensor:
    """q: (M, H, d); keys: (n, d) -> (n, M) best head's score, above
    ``floor`` (M, H) where given (the score a key must beat there)."""
    d = q.shape[-1]
    s = torch.einsum("mhd,nd->nmh", q, keys) / math.sqrt(d)
    if floor is not None:
        s = s - floor
    return s.amax(-1)


def mine_negatives(queries: torch.Tensor, keys: torch.Tensor, excluded: list[torch.Tensor], count: int,
                   chunk: int = 8192, floor: torch.Tensor | None = None) -> torch.Tensor:
    """For each key, the ``count`` highest-scoring query rows that must not
    fire it (rows in ``excluded[i]`` may), scored above ``floor`` where
    given. Returns (n, count) row indices."""
    n, M = keys.shape[0], queries.shape[0]
    count = min(count, M)
    best_s = torch.full((n, 0), -math.inf)
    best_i = torch.zeros((n, 0), dtype=torch.long)
    # every (key, row) pair that may fire, flat: one masked assignment per chunk, not one per key (at 1,000
    # keys, mining took 38 s of the key fit's 69 s under the profiler, with that loop inside it)
    ex_key = torch.cat([torch.full((len(ex),), i, dtype=torch.long) for i, ex in enumerate(excluded)]) \
        if excluded else torch.zeros(0, dtype=torch.long)
    ex_row = torch.cat([ex.long() for ex in excluded]) if excluded else torch.zeros(0, dtype=torch.long)
    for a in range(0, M, chunk):
        s = _scores(queries[a:a + chunk], keys, None if floor is None else floor[a:a + chunk])  # (n, m)
        here = (ex_row >= a) & (ex_row < a + chunk)
        s[ex_key[here], ex_row[here] - a] = -math.inf
        s_all = torch.cat([best_s, s], 1)
        i_all = torch.cat([best_i, torch.arange(a, a + s.shape[1]).expand(n, -1)], 1)
        top = s_all.topk(min(count, s_all.shape[1]), dim=1)
        best_s, best_i = top.values, i_all.gather(1, top.indices)
    return best_i


def fit_keys(queries: torch.Tensor, positives: list[torch.Tensor], excluded: list[torch.Tensor],
             cfg: RoutingConfig, rivals: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, dict]:
    """queries: (M, H, d_k) of one KMM layer; positives[i]: rows that must
    fire key i; excluded[i]: rows that may (every position where its subject
    ends, in any text). Returns keys (n, d_k) and a summary of the fit.

    ``rivals``: (best, k-th), each (M, H), the scores of the keys already in
    the field, where they are trained keys rather than empty slots (the
    demo's bound slots): a positive must then beat the best of them by the
    margin (it wins the softmax), a negative stay the negative margin below
    the k-th (it is never selected). Without it both are 0: the empty slots.

    Each key starts at its positives' mean minus the mean query and is
    trained on a hinge loss: positives above ``margin``, the hardest
    negatives below ``-negative_margin`` (mined by exact scores), a small L2
    for a max-margin solution that generalises to unseen phrasings."""
    M, H, d = queries.shape
    n = len(positives)
    best, kth = rivals if rivals is not None else (None, None)
    keys = (torch.stack([queries[p].mean(0) for p in positives]) - queries.mean(0)).mean(1)  # (n, d)
    keys = keys.clone().requires_grad_(True)
    opt = torch.optim.Adam([keys], lr=cfg.lr)
    pos_rows = torch.cat(positives)
    owner = torch.cat([torch.full((len(p),), i) for i, p in enumerate(positives)])
    counts = torch.tensor([len(p) for p in positives], dtype=torch.float32)
    q_pos = queries[pos_rows]
    best_pos = best[pos_rows] if best is not None else 0.0
    k_hinge = min(cfg.hinge_negatives, cfg.hard_negatives, M)
    low = cfg.negatives_dtype or (torch.bfloat16 if native_bf16() else queries.dtype)
    for step in range(cfg.steps):
        if step % cfg.mine_every == 0:
            hard = mine_negatives(queries, keys.detach(), excluded, cfg.hard_negatives, floor=kth)
            # Gathered once per mining, not per step: at 1,000 keys x 256 negatives the gather is 65M floats.
            q_hard = queries[hard].to(low)  # (n, c, H, d)
            kth_hard = kth[hard] if kth is not None else 0.0
        s_pos = (torch.einsum("mhd,md->mh", q_pos, keys[owner]) / math.sqrt(d) - best_pos).amax(-1)
        s_neg = (torch.einsum("nchd,nd->nch", q_hard, keys.to(q_hard.dtype)).float() / math.sqrt(d) - kth_hard).amax(-1)
        pos_loss = torch.zeros(n).index_add(0, owner, torch.relu(cfg.margin - s_pos)) / counts
        neg_loss = torch.relu(s_neg + cfg.negative_margin).topk(min(k_hinge, s_neg.shape[1]), dim=1).values.mean(1)
        loss = (cfg.positive_weight * pos_loss + neg_loss).sum() + cfg.l2 * keys.pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    keys = keys.detach()
    worst = mine_negatives(queries, keys, excluded, 1, floor=kth)[:, 0]
    s_pos = (torch.einsum("mhd,md->mh", queries[pos_rows], keys[owner]) / math.sqrt(d) - best_pos).amax(-1)
    worst_neg = _scores_at(queries, keys, worst, kth)
    pos_min = torch.full((n,), math.inf).scatter_reduce(0, owner, s_pos, "amin")
    separated = (pos_min > 0) & (worst_neg < 0)
    return keys, {"separated": int(separated.sum()), "facts": n,
                  "positive_min": round(float(pos_min.min()), 2), "negative_max": round(float(worst_neg.max()), 2),
                  "per_fact": separated}


def _scores_at(queries: torch.Tensor, keys: torch.Tensor, rows: torch.Tensor, floor=None) -> torch.Tensor:
    d = queries.shape[-1]
    s = torch.einsum("nhd,nd->nh", queries[rows], keys) / math.sqrt(d)
    return (s - (floor[rows] if floor is not None else 0.0)).amax(-1)


__all__ = ["RoutingConfig", "fit_keys", "mine_negatives"]
