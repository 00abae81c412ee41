"""A training-time KMM forward with the reference semantics, cheaper on CPU.

The reference ``KnowledgeMemory.forward`` sorts every score row and, with
``grad_fields``, runs retrieval twice (live and detached). For training we
select the top-k slots without gradient (selection is not differentiable
anyway), then recompute only the selected scores from gathered keys, so the
backward pass touches k slots per head instead of all N. Per-sequence gradient
routing (``grad_fields``) becomes a ``where`` between gathered rows and their
detached copies: a sequence's memory gradient reaches only the fields it is
allowed to, while its query still gets gradient from every field.

Forward values equal the reference up to float rounding and tie order
(``topk`` vs a stable sort). Evaluation always uses the reference model.
"""

from __future__ import annotations

import contextlib
import math
import types

import torch

from lokiserve.model import KnowledgeMemory, LoKiFormerForCausalLM


class _MaskedGather(torch.autograd.Function):
    """rows = table[idx]; the backward sends gradient only from rows whose
    ``allow`` flag is set (per-sequence field routing without a second pass)."""

    @staticmethod
    def forward(ctx, table, idx, allow):
        ctx.save_for_backward(idx, allow)
        ctx.shape = table.shape
        return table[idx]

    @staticmethod
    def backward(ctx, grad):
        idx, allow = ctx.saved_tensors
        if allow is not None:
            grad = grad * allow
        out = torch.zeros(ctx.shape, dtype=grad.dtype, device=grad.device)
        out.index_add_(0, idx, grad)
        return out, None, None


def fast_kmm_forward(self: KnowledgeMemory, c, field_scale=None, grad_fields=None):
    B, T, _ = c.shape
    H, dk, dv, k = self.heads, self.key_dim, self.value_dim, self.topk
    Fn, N, _ = self.keys.shape
    active = getattr(self, "_active", None)  # (B*T,) bool: real tokens (padding gets no memory)
    seq = torch.arange(B, device=c.device).repeat_interleave(T)
    c2 = c.reshape(B * T, -1)
    if active is not None:
        c2, seq = c2[active], seq[active]
    M = c2.shape[0]
    q = self.query(c2).view(M, H, dk)
    if getattr(self, "_capture_queries", False):
        self._queries = q  # (M, H, d_k) of the real tokens: the bound-slot retrieval loss reads them
    table = getattr(self, "_value_override", None)  # bound slots: values are answer embeddings
    table = self.values if table is None else table
    with torch.no_grad():
        scores = torch.einsum("bhd,fnd->bhfn", q.detach(), self.keys.detach())
        idx = scores.topk(k, dim=-1).indices  # (M, H, F, k)
    flat = (idx + torch.arange(Fn, device=c.device).view(1, 1, Fn, 1) * N).reshape(-1)
    allow = None
    if grad_fields is not None:
        allow = grad_fields[seq].view(M, 1, Fn, 1).expand(M, H, Fn, k).reshape(-1, 1).to(self.keys.dtype)
    kg = _MaskedGather.apply(self.keys.reshape(Fn * N, dk), flat, allow).view(M, H, Fn * k, dk)
    vg = _MaskedGather.apply(table.reshape(Fn * N, dv), flat, allow).view(M, H, Fn * k, dv)
    s = torch.matmul(kg, q.unsqueeze(-1)).view(M, H, Fn, k) / math.sqrt(dk)
    w = torch.softmax(s.float(), dim=-1)
    keep = self.enabled.to(w.dtype).view(1, 1, Fn, 1)
    if field_scale is not None:
        keep = keep * field_scale[seq].view(M, 1, Fn, 1)
    w = (w * keep).view(M, H, 1, Fn * k)
    r = torch.matmul(w, vg).view(M, H * dv).to(c.dtype)  # sum over fields of weighted values
    out = self.out(r)
    if active is None:
        return out.view(B, T, -1)
    full = out.new_zeros(B * T, out.shape[-1])
    full[active] = out
    return full.view(B, T, -1)


@contextlib.contextmanager
def token_mask(model: LoKiFormerForCausalLM, mask: torch.Tensor | None):
    """Tell the fast KMM which positions are real tokens (B, T) bool."""
    mems = list(model.memory_modules().values())
    for m in mems:
        m._active = None if mask is None else mask.reshape(-1)
    try:
        yield
    finally:
        for m in mems:
            m._active = None


@contextlib.contextmanager
def fast_kmm(model: LoKiFormerForCausalLM):
    """Use the fast forward on every KMM module for the duration of the block."""
    mems = list(model.memory_modules().values())
    for m in mems:
        m.forward = types.MethodType(fast_kmm_forward, m)
    try:
        yield model
    finally:
        for m in mems:
            del m.forward
