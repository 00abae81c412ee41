"""How the field memory is split over tensor-parallel ranks.

One rule, used by checkpoint loading *and* hot swaps, so a swapped field
lands exactly where a loaded one would:

* keys ``[F, N, d_k]`` are replicated: every rank scores every slot, so every
  rank selects the same top-k with no communication;
* values ``[F, N, d_v]`` are split along ``d_v``: rank r keeps columns
  ``[r*d_v/tp, (r+1)*d_v/tp)`` and retrieves its slice of every head;
* the output projection ``W_mo`` is row-parallel over the same (head, d_v
  slice) layout, so the memory's partial outputs join the attention output's
  partial sums in the one all-reduce each block already does.

Per rank: F*N*(d_k + d_v/tp) memory; per token: no extra communication.
"""

from __future__ import annotations

import torch


def value_shard(values: torch.Tensor, rank: int, tp: int) -> torch.Tensor:
    """values [..., d_v] -> this rank's [..., d_v / tp] slice."""
    d_v = values.shape[-1]
    if d_v % tp:
        raise ValueError(f"kmm_value_dim={d_v} is not divisible by tensor_parallel_size={tp}")
    width = d_v // tp
    return values[..., rank * width : (rank + 1) * width]


def permute_memory_out_proj(weight: torch.Tensor, heads: int, value_dim: int, tp: int) -> torch.Tensor:
    """W_mo [d, heads*d_v] with columns in (head, d_v) order -> columns in
    (rank, head, d_v/tp) order, so a contiguous row-parallel split hands rank r
    exactly the columns that multiply its value slice of every head."""
    d = weight.shape[0]
    w = weight.view(d, heads, tp, value_dim // tp).permute(0, 2, 1, 3)
    return w.reshape(d, heads * value_dim).contiguous()
