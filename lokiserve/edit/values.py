"""Values that make the model say the new answer (ROME's value solve, stored).

A KMM value is directly a residual update (``W_mo`` times the retrieved
values), so a fact's value is solved as ROME/MEMIT solve their residual
vector: gradient steps on the answer's log-likelihood through the frozen
layers above, with the fitted keys in place, so the solve sees exactly the
routing the served model will apply. Only the fact slots of one field
receive updates; every other slot, field and weight is restored after each
step (bit-identical). Facts whose answers already win by a margin leave the
active set, so the cost falls as the solve converges.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lokiserve.edit.encoding import Sequence, batches, right_padded
from lokiserve.model import LoKiFormerForCausalLM


@dataclass
class ValueConfig:
    steps: int = 40
    lr: float = 0.5
    done_logprob: float = -0.4  # a sequence is solved when every answer token has log p above this
    tokens_per_batch: int = 4096
    max_norm: float | None = None  # cap on each slot's value norm (None: no cap)


def solve_values(model: LoKiFormerForCausalLM, f: int, slots: dict[int, torch.Tensor], seqs: list[Sequence],
                 owners: list[int], cfg: ValueConfig, targets: list[tuple[int, ...]] | None = None,
                 progress=None) -> dict:
    """Fit field ``f``'s values at ``slots[layer][i]`` (fact ``i``'s slot in
    each KMM layer that routes facts), so that each sequence produces its
    target tokens after the prompt (default: its answer; a *keep* sequence,
    a retain fact that mentions an edited subject, targets what the model
    said before the edit). Keys must already be in place and the field
    enabled; slots in other layers keep key 0 and value 0 (empty)."""
    targets = targets or [s.answer for s in seqs]
    layers = sorted(slots)
    mems = [model.memory_modules()[li] for li in layers]
    params = [m.values for m in mems]
    saved = [p.detach().clone() for p in params]
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=cfg.lr)
    masks = []
    for li in layers:
        m = torch.zeros(params[0].shape[:2], dtype=torch.bool)
        m[f, slots[li]] = True  # the only entries that may change
        masks.append(m)
    active = list(range(len(seqs)))
    owner_t = torch.tensor(owners)
    history = []
    try:
        for step in range(cfg.steps):
            if not active:
                break
            opt.zero_grad(set_to_none=True)
            order = sorted(active, key=lambda i: len(seqs[i].ids))
            worst = torch.full((len(seqs),), 0.0)
            total = 0.0
            for chunk in batches(order, cfg.tokens_per_batch, length=lambda i: len(seqs[i].ids)):
                ids, mask = right_padded([seqs[i].ids for i in chunk])
                hidden = model.model(ids, mask)
                losses = []
                for row, i in enumerate(chunk):
                    s = seqs[i]
                    logits = model.lm_head(hidden[row, s.answer_start - 1: len(s.ids) - 1]).float()
                    logp = torch.log_softmax(logits, -1).gather(1, torch.tensor(targets[i]).view(-1, 1))
                    worst[i] = logp.min().detach()
                    losses.append(-logp.mean())
                loss = torch.stack(losses).sum()
                loss.backward()
                total += float(loss.detach())
            history.append(total / len(active))
            still = set(i for i in active if worst[i] < cfg.done_logprob)
            # A fact stays in play while any of its sequences is unsolved.
            live = set(int(owner_t[i]) for i in still)
            if step == 0:
                first_solved = len(set(owners)) - len(live)
            active = [i for i in active if int(owner_t[i]) in live]
            live_idx = torch.tensor(sorted(live), dtype=torch.long)
            for p, li, m in zip(params, layers, masks):
                if p.grad is not None:
                    live_rows = torch.zeros_like(m)
                    live_rows[f, slots[li][live_idx]] = True
                    p.grad[~(m & live_rows)] = 0
            prev = [p.detach().clone() for p in params]
            if live:
                opt.step()
            with torch.no_grad():
                done_idx = torch.tensor(sorted(set(range(len(slots[layers[0]]))) - live), dtype=torch.long)
                for p, s, m, li, pr in zip(params, saved, masks, layers, prev):
                    p[~m] = s[~m]
                    if len(done_idx):  # a solved fact stays put (Adam's momentum would move it on)
                        p[f, slots[li][done_idx]] = pr[f, slots[li][done_idx]]
                    if cfg.max_norm is not None:
                        v = p[f, slots[li]]
                        p[f, slots[li]] = v * (cfg.max_norm / v.norm(dim=-1, keepdim=True).clamp(min=cfg.max_norm))
            if progress is not None:
                progress(step, len(live), history[-1])
    finally:
        for p in params:
            p.requires_grad_(False)
            p.grad = None
    return {"steps": len(history), "solved_before_any_step": first_solved if history else 0, "loss_first": history[0] if history else None,
            "loss_last": history[-1] if history else None, "unsolved": len(active)}


__all__ = ["ValueConfig", "solve_values"]
