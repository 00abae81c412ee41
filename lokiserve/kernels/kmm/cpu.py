"""KMM retrieval tuned for CPUs (vLLM's CPU path); same contract as the reference.

On CPU, prefill dominates the cost of the memory: every prompt token searches
every slot of every enabled field. Three changes against the reference, each
exact:

* the ``1/sqrt(d_k)`` scale is applied to the queries, not the larger score
  matrix;
* top-k runs in two stages: the maximum of every block of 16 slots
  (``amax``, a cheap vectorised reduction), top-k over those block maxima,
  then top-k over the k selected blocks only (for batches of at least
  ``MIN_ROWS_BLOCKED`` query rows; smaller ones take one plain top-k). Without a tie straddling the
  k-th place, the k best slots always lie in the k best blocks (a block
  outside them has a maximum below the k-th score). Such a tie is detected
  from the block maxima and the candidates, and then the reference's exact
  stable selection decides, so ties still resolve to the lower slot;
* the selected values of all fields are combined in one batched matmul
  instead of a per-field einsum and a sum.

When the native scan (``native.py``, ``cpu_scan.c``) builds, everything after
the score matmul runs there instead: one pass per row, no per-op overhead,
same contract (tested against the reference). It skips disabled fields
itself, so decode-sized calls score every field rather than copy out the live
ones; prefill-sized calls (``MIN_ROWS_COMPACT`` rows) copy them out first,
which costs less than scoring the reserve. The blocked PyTorch path above
stays as the fallback where no C compiler exists.

``tests/test_kmm_cpu.py`` compares it with ``kmm_decode_reference`` (random,
exact ties inside and across blocks, disabled fields, small N, dtypes).
"""

from __future__ import annotations

import math

import torch

from lokiserve.kernels.kmm import native
from lokiserve.kernels.kmm.naive import live_fields, select_topk

BLOCK = 16  # slots per block of the first top-k stage
MIN_ROWS_BLOCKED = 128  # below this many (query, head) rows one plain top-k is as fast
MIN_ROWS_COMPACT = 1024  # from this many rows, copying out the live fields pays for itself


def blocked_topk(scores: torch.Tensor, topk: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Exact top-k of ``scores`` (R, F, N) via block maxima, or None when a
    tie straddles the k-th place (the caller then uses ``select_topk``).
    Needs N a multiple of BLOCK with more than ``topk`` blocks."""
    R, F, N = scores.shape
    nb = N // BLOCK
    if N % BLOCK or nb <= topk:
        raise ValueError(f"blocked_topk needs N a multiple of {BLOCK} with more than topk={topk} blocks, got N={N}")
    blocks = scores.view(R, F, nb, BLOCK)
    block_max = blocks.amax(-1)  # (R, F, nb)
    best_max, best_block = block_max.topk(topk + 1, dim=-1)  # the (k+1)-th bounds every unselected block
    chosen = best_block[..., :topk]  # (R, F, k)
    cand = blocks.gather(2, chosen.unsqueeze(-1).expand(R, F, topk, BLOCK)).view(R, F, topk * BLOCK)
    top_scores, local = cand.topk(topk, dim=-1)
    kth = top_scores[..., -1:]
    straddling = (best_max[..., topk:] >= kth) | ((cand >= kth).sum(-1, keepdim=True) > topk)
    if bool(straddling.any()):
        return None
    slots = chosen.gather(2, torch.div(local, BLOCK, rounding_mode="floor")) * BLOCK + local % BLOCK
    return top_scores, slots


def kmm_decode_cpu(
    q: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    enabled: torch.Tensor,
    topk: int,
) -> torch.Tensor:
    """KMM retrieval, summed over enabled fields (the reference's contract).

    q: [B, H, d_k]; keys: [F, N, d_k]; values: [F, N, d_v]; enabled: [F] bool
    returns out: [B, H, d_v] in q's dtype; a disabled field is not searched.
    """
    B, H = q.shape[:2]
    R, N = B * H, keys.shape[1]
    if not 1 <= topk <= N:
        raise ValueError(f"topk={topk} must be in [1, N={N}]")
    enabled = enabled.to(device=keys.device, dtype=torch.bool)
    use_native = q.device.type == "cpu" and topk <= native.max_topk()
    # The native scan skips disabled fields itself: below MIN_ROWS_COMPACT rows
    # it scores every field instead of copying out the live ones.
    if not use_native or (R >= MIN_ROWS_COMPACT and not bool(enabled.all())):
        keys, values = live_fields(keys, values, enabled)
        enabled = torch.ones(keys.shape[0], dtype=torch.bool, device=keys.device)
    F, N, d_k = keys.shape
    if R == 0 or F == 0:
        return q.new_zeros(B, H, values.shape[-1])
    q_scaled = q.reshape(R, d_k).float() * (1.0 / math.sqrt(d_k))
    scores = (q_scaled @ keys.reshape(F * N, d_k).float().t()).view(R, F, N)
    if use_native:  # selection, softmax and value sum in cpu_scan.c
        return native.topk_combine(scores, values, enabled, topk).view(B, H, -1).to(q.dtype)
    picked = None
    if R >= MIN_ROWS_BLOCKED and N % BLOCK == 0 and N // BLOCK > topk:
        picked = blocked_topk(scores, topk)
    top_scores, top_idx = picked if picked is not None else select_topk(scores, topk)
    weights = torch.softmax(top_scores, dim=-1)  # (R, F, k), fp32
    flat = (top_idx + (torch.arange(F, device=q.device) * N).view(1, F, 1)).reshape(-1)
    selected = values.reshape(F * N, -1).float().index_select(0, flat).view(R, F * topk, -1)
    out = torch.bmm(weights.view(R, 1, F * topk), selected)  # sums the fields too
    return out.view(B, H, -1).to(q.dtype)
