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
Used through the model's declared interface:
``model(ids, kmm=KmmOptions(retrieval=fast_retrieval, ...))``.
"""

from __future__ import annotations

import math

import torch

from lokiserve.model import KmmOptions, KnowledgeMemory


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


def fast_retrieval(self: KnowledgeMemory, c: torch.Tensor, opts: KmmOptions) -> torch.Tensor:
    """``KnowledgeMemory.forward`` for training (``KmmOptions.retrieval``): the
    same outputs, padding (outside ``opts.token_mask``) reads no memory."""
    B, T, _ = c.shape
    H, dk, dv, k = self.heads, self.key_dim, self.value_dim, self.topk
    Fn, N, _ = self.keys.shape
    active = None if opts.token_mask is None else opts.token_mask.reshape(-1)  # (B*T,) bool: real tokens
    seq = torch.arange(B, device=c.device).repeat_interleave(T)
    c2 = c.reshape(B * T, -1)
    if active is not None:
        c2, seq = c2[active], seq[active]
    M = c2.shape[0]
    q = self.query(c2).view(M, H, dk)
    if opts.queries is not None:
        opts.queries[self.layer_idx] = q  # (M, H, d_k) of the real tokens: the bound-slot retrieval loss reads them
    table = self.values if opts.values is None else opts.values  # bound slots: values are answer embeddings
    with torch.no_grad():
        scores = torch.einsum("bhd,fnd->bhfn", q.detach(), self.keys.detach())
        idx = scores.topk(k, dim=-1).indices  # (M, H, F, k)
    flat = (idx + torch.arange(Fn, device=c.device).view(1, 1, Fn, 1) * N).reshape(-1)
    allow = None
    if opts.grad_fields is not None:
        allow = opts.grad_fields[seq].view(M, 1, Fn, 1).expand(M, H, Fn, k).reshape(-1, 1).to(self.keys.dtype)
    kg = _MaskedGather.apply(self.keys.reshape(Fn * N, dk), flat, allow).view(M, H, Fn * k, dk)
    vg = _MaskedGather.apply(table.reshape(Fn * N, dv), flat, allow).view(M, H, Fn * k, dv)
    s = torch.matmul(kg, q.unsqueeze(-1)).view(M, H, Fn, k) / math.sqrt(dk)
    w = torch.softmax(s.float(), dim=-1)
    keep = self.enabled.to(w.dtype).view(1, 1, Fn, 1)
    if opts.field_scale is not None:
        keep = keep * opts.field_scale[seq].view(M, 1, Fn, 1)
    w = (w * keep).view(M, H, 1, Fn * k)
    r = torch.matmul(w, vg).view(M, H * dv).to(c.dtype)  # sum over fields of weighted values
    out = self.out(r)
    if active is None:
        return out.view(B, T, -1)
    full = out.new_zeros(B * T, out.shape[-1])
    full[active] = out
    return full.view(B, T, -1)


__all__ = ["fast_retrieval"]
