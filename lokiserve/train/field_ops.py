"""Field helpers shared by the trainer and the field writer: training one
field with everything else frozen, and reading the frozen model's memory
queries (what a field's keys must answer to)."""

from __future__ import annotations

import torch

from lokiserve.model import LoKiFormerForCausalLM
from lokiserve.train.tokenizer import encode, special_ids


def reinit_field(model: LoKiFormerForCausalLM, f: int, gen: torch.Generator,
                 optimizer: torch.optim.Optimizer | None = None) -> None:
    """Fresh memory for one field (``FieldMemory.reinit``) and a fresh
    optimizer state for that slice."""
    model.field_memory.reinit(f, gen)
    if optimizer is None:
        return
    for mem in model.memory_modules().values():
        for p in (mem.keys, mem.values):
            state = optimizer.state.get(p)
            if state:
                for key in ("exp_avg", "exp_avg_sq"):
                    state[key][f].zero_()


class OneFieldTrainable:
    """The memory tensors (``tensors``) of every KMM layer, made trainable,
    and ``restore`` to call after each optimizer step: it puts every other
    field back from a snapshot, so that only field ``f`` changes and every
    other tensor stays bit-identical."""

    def __init__(self, model: LoKiFormerForCausalLM, f: int, tensors: tuple[str, ...] = ("keys", "values")):
        self.memory = model.field_memory
        self.params: list[torch.Tensor] = []
        for mem in self.memory.modules.values():
            for p in (getattr(mem, t) for t in tensors):
                p.requires_grad_(True)
                self.params.append(p)
        self._others = self.memory.snapshot([i for i in range(len(self.memory.names)) if i != f])

    def restore(self) -> None:
        self.memory.restore(self._others)


@torch.no_grad()
def prompt_queries(model: LoKiFormerForCausalLM, tok, rows: list[dict]) -> dict[int, torch.Tensor]:
    """Memory queries (n, H, d_k) of every KMM layer at the last prompt token
    (the position that predicts the answer's first token)."""
    sp = special_ids(tok)
    seqs = [[sp["bos"]] + encode(tok, r["prompt"]) for r in rows]
    T = max(map(len, seqs))
    ids = torch.full((len(seqs), T), sp["pad"], dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
    last = torch.tensor([len(s) - 1 for s in seqs])
    captured: dict[int, torch.Tensor] = {}
    hooks = []
    for li, mem in model.memory_modules().items():
        def hook(_mod, _inp, out, li=li, mem=mem):
            captured[li] = out[torch.arange(len(seqs)), last].view(len(seqs), mem.heads, mem.key_dim)
        hooks.append(mem.query.register_forward_hook(hook))
    try:
        model(ids)
    finally:
        for h in hooks:
            h.remove()
    return captured


def centred_queries(q: torch.Tensor, rows: list[dict]) -> torch.Tensor:
    """Queries (n, H, d_k) minus their relation's mean, with the mean
    direction projected out: the part that tells one entity from another
    (a relation's queries share a large common part, the template)."""
    out = q.clone()
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault(f"{r['domain']}/{r.get('relation', '')}", []).append(i)
    for idx in groups.values():
        g = q[idx]
        m = g.mean(dim=0, keepdim=True)  # (1, H, dk)
        u = m / m.norm(dim=-1, keepdim=True).clamp(min=1e-6)
        c = g - m
        out[idx] = c - (c * u).sum(-1, keepdim=True) * u
    return out


__all__ = ["reinit_field", "OneFieldTrainable", "prompt_queries", "centred_queries"]
