"""Plain PyTorch reference for KMM retrieval: the oracle for every kernel.

It materialises the full score matrix, which is exactly what the Triton
kernel avoids; it is written for clarity and for exact tie-breaking
(stable sort: equal scores keep the lower slot index first).
"""

from __future__ import annotations

import math

import torch


def select_topk(scores: torch.Tensor, topk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k along the last dim; exact ties straddling the k-th place resolve
    to the lower slot index (the contract every implementation honours).

    ``torch.topk`` is fast but leaves tie order unspecified, so its set is
    kept only for rows with no more than k scores >= its k-th value. Rows
    with a tie (common: a written field's empty slots all score exactly 0)
    take every score above the k-th value, then the lowest-index slots equal
    to it, ordered as a stable descending sort would order them. Linear in
    the slots, no sort of the whole row.
    """
    top_scores, top_idx = torch.topk(scores, topk, dim=-1)
    kth = top_scores[..., -1:]
    straddling = (scores >= kth).sum(-1) > topk
    if bool(straddling.any()):
        s, kt = scores[straddling], kth[straddling]  # (R, N), (R, 1)
        greater = s > kt
        equal = s == kt
        take = greater | (equal & (equal.cumsum(-1) <= topk - greater.sum(-1, keepdim=True)))
        chosen = take.nonzero()[:, 1].view(-1, topk)  # ascending slot index, exactly k per row
        chosen_scores = s.gather(1, chosen)
        order = torch.sort(chosen_scores, dim=-1, descending=True, stable=True).indices
        top_scores, top_idx = top_scores.clone(), top_idx.clone()  # topk's backward keeps its own
        top_scores[straddling] = chosen_scores.gather(1, order)
        top_idx[straddling] = chosen.gather(1, order)
    return top_scores, top_idx


def kmm_field_outputs(
    q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, topk: int
) -> torch.Tensor:
    """Retrieve from every field independently, without summing.

    q: [B, H, d_k]; keys: [F, N, d_k]; values: [F, N, d_v]
    returns [B, H, F, d_v] in float32 (the caller decides how fields combine;
    training uses this to route gradients per field).
    """
    F, N, d_k = keys.shape
    B, H = q.shape[:2]
    if not 1 <= topk <= N:
        raise ValueError(f"topk={topk} must be in [1, N={N}]")
    # One matmul against every slot of every field: (B*H, d_k) x (d_k, F*N).
    scores = q.reshape(B * H, d_k).float() @ keys.reshape(F * N, d_k).float().t()
    scores = scores.view(B * H, F, N) * (1.0 / math.sqrt(d_k))
    top_scores, top_idx = select_topk(scores, topk)  # (B*H, F, k)
    weights = torch.softmax(top_scores, dim=-1)  # fp32 softmax over the selected
    flat_idx = top_idx + (torch.arange(F, device=q.device) * N).view(1, F, 1)
    picked = values.reshape(F * N, -1).float().index_select(0, flat_idx.reshape(-1))
    picked = picked.view(B * H, F, topk, -1)  # (B*H, F, k, d_v)
    out = torch.einsum("rfk,rfkd->rfd", weights, picked)
    return out.view(B, H, F, -1)


def live_fields(keys: torch.Tensor, values: torch.Tensor, enabled: torch.Tensor):
    """The enabled fields' keys and values: a disabled field is not searched
    at all (left out, not multiplied by zero). May return 0 fields."""
    enabled = enabled.to(device=keys.device, dtype=torch.bool)
    if bool(enabled.all()):
        return keys, values
    live = enabled.nonzero().flatten()
    return keys.index_select(0, live), values.index_select(0, live)


def kmm_decode_reference(
    q: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    enabled: torch.Tensor,
    topk: int,
) -> torch.Tensor:
    """KMM retrieval, summed over enabled fields.

    q: [B, H, d_k]; keys: [F, N, d_k]; values: [F, N, d_v]; enabled: [F] bool
    returns out: [B, H, d_v] in q's dtype. A disabled field contributes
    exactly 0: it is left out of the search, not multiplied by zero.
    """
    keys, values = live_fields(keys, values, enabled)
    if keys.shape[0] == 0:
        return q.new_zeros(*q.shape[:2], values.shape[-1])
    per_field = kmm_field_outputs(q, keys, values, topk)  # (B, H, F_live, d_v)
    return per_field.sum(dim=2).to(q.dtype)
