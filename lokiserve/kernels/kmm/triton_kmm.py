"""Triton decode kernel for KMM retrieval (semantics: ``naive.kmm_decode_reference``).

Why two stages: decode has few query rows (B*H can be 1), so one program per
(row block, field) would leave most SMs idle on a 64k-slot field. Stage 1
splits every field's slots across programs; each streams its keys in blocks,
scores a [BLOCK_M, BLOCK_N] tile with ``tl.dot`` and keeps a running top-k in
registers. Only the per-split top-k (score, slot) pairs reach memory, never a
B*H*N score tensor. Stage 2 (one program per row) merges the splits, takes the
fp32 softmax, gathers just the selected value rows and sums the enabled fields.

Why packed int64 keys: the running top-k must break ties towards the lower
slot exactly like the reference's stable sort. Packing
``(order-preserving score bits) << 32 | (2**32 - 1 - slot)`` into one int64
makes every candidate unique and totally ordered, so a plain ``tl.sort`` and
``tl.maximum`` implement "higher score first, then lower slot" with no extra
tie logic. The merge uses the bitonic property: for ``a`` sorted descending
and ``b`` sorted ascending (same length), ``maximum(a, b)`` holds the top
``len(a)`` elements of ``a`` U ``b``.

Only Triton features present in 3.6 and 3.9 are used (``tl.sort``, not
``tl.topk``). Set ``TRITON_INTERPRET=1`` before importing triton to run the
kernels on CPU tensors.
"""

from __future__ import annotations

import contextlib
import functools
import math

import torch
import triton
import triton.language as tl

_SUPPORTED_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
# Below every packed real key: the smallest packed score is that of -inf.
_SENTINEL = tl.constexpr(-(2**63))
_KEY_MAX = tl.constexpr(2**63 - 1)
_LOW32 = tl.constexpr(2**32 - 1)  # slot field of a packed key
_MAX_SLOTS = 2**32 - 1


@triton.jit
def _pack(scores, slots):
    """fp32 scores + slot ids -> int64 keys ordered by (score desc, slot asc)."""
    scores = tl.where(scores == 0.0, 0.0, scores)  # -0.0 and +0.0 must tie
    bits = scores.to(tl.int32, bitcast=True)
    ordered = tl.where(bits < 0, bits ^ 0x7FFFFFFF, bits)
    return (ordered.to(tl.int64) << 32) | (slots.to(tl.int64) ^ _LOW32)


@triton.jit
def _unpack(keys):
    """Inverse of ``_pack``: int64 keys -> (fp32 scores, int64 slot ids)."""
    ordered = (keys >> 32).to(tl.int32)
    bits = tl.where(ordered < 0, ordered ^ 0x7FFFFFFF, ordered)
    return bits.to(tl.float32, bitcast=True), (keys & _LOW32) ^ _LOW32


@triton.jit
def _merge_topk(best, new):
    """Row-wise top len(best) of best U new; ``best`` rows sorted descending."""
    return tl.sort(tl.maximum(best, tl.sort(new, dim=1)), dim=1, descending=True)


@triton.jit
def _sort_rows(x, ALTERNATE: tl.constexpr):
    """Sort each row descending, or odd rows ascending when ALTERNATE.

    ``~`` reverses int64 order, so one descending ``tl.sort`` does both.
    """
    if ALTERNATE:
        odd = (tl.arange(0, x.shape[0]) % 2 == 1)[:, None]
        y = tl.sort(tl.where(odd, ~x, x), dim=1, descending=True)
        return tl.where(odd, ~y, y)
    return tl.sort(x, dim=1, descending=True)


@triton.jit
def _merge_rows_tree(c, LOG_ROWS: tl.constexpr):
    """[2**LOG_ROWS, K] keys -> [1, K]: the top K of all rows, sorted descending.

    Bitonic tree: with rows alternately descending / ascending, the max over
    each adjacent pair is that pair's top K, so every level is one reduction
    plus one batched sort, log2(rows) levels instead of a serial chain.
    """
    c = _sort_rows(c, LOG_ROWS > 0)
    for level in tl.static_range(LOG_ROWS):
        c = tl.max(tl.reshape(c, [c.shape[0] // 2, 2, c.shape[1]]), axis=1)
        c = _sort_rows(c, level < LOG_ROWS - 1)
    return c


@triton.jit
def _kmm_topk_partial_kernel(
    q_ptr, k_ptr, en_ptr, cand_ptr,
    R, H, N, topk, slots_per_split, scale,
    stride_qb, stride_qh, stride_qd,
    stride_kf, stride_kn, stride_kd,
    stride_cr, stride_cf, stride_cs,
    D_K: tl.constexpr, BLOCK_D: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, K_PAD: tl.constexpr,
    DOT_IN_FP32: tl.constexpr,
):
    """Stage 1, program (row block, field, split): that split's top-k keys.

    Writes cand[row, field, split, :K_PAD], sorted descending; entries past
    ``topk`` may be stale but are real candidates, which stage 2 tolerates.
    """
    pid_m = tl.program_id(0)
    field = tl.program_id(1).to(tl.int64)
    split = tl.program_id(2).to(tl.int64)
    if tl.load(en_ptr + field) != 0:
        rows = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
        row_ok = rows < R
        d = tl.arange(0, BLOCK_D)
        q_ptrs = (q_ptr + (rows // H)[:, None] * stride_qb + (rows % H)[:, None] * stride_qh
                  + d[None, :] * stride_qd)
        q = tl.load(q_ptrs, mask=row_ok[:, None] & (d[None, :] < D_K), other=0.0)

        lo = split * slots_per_split
        hi = tl.minimum(lo + slots_per_split, N)
        cols = tl.arange(0, BLOCK_N)
        k_base = k_ptr + field * stride_kf + d[None, :] * stride_kd
        best = tl.full([BLOCK_M, BLOCK_N], _SENTINEL, tl.int64)
        for start in range(lo, hi, BLOCK_N):
            slots = start + cols
            slot_ok = slots < hi
            kt = tl.load(k_base + slots.to(tl.int64)[:, None] * stride_kn,
                         mask=slot_ok[:, None] & (d[None, :] < D_K), other=0.0)
            if DOT_IN_FP32:
                s = tl.dot(q.to(tl.float32), tl.trans(kt.to(tl.float32)), input_precision="ieee")
            else:
                s = tl.dot(q, tl.trans(kt))
            keys = _pack(s * scale, slots[None, :])
            keys = tl.where(slot_ok[None, :], keys, _SENTINEL)
            # Skip the two sorts unless some row's block beats its k-th best.
            kth = tl.min(tl.where(cols[None, :] < topk, best, _KEY_MAX), axis=1)
            wins = (tl.max(keys, axis=1) > kth) & row_ok
            if tl.max(wins.to(tl.int32), axis=0) > 0:
                best = _merge_topk(best, keys)
        c_ptrs = (cand_ptr + rows[:, None] * stride_cr + field * stride_cf
                  + split * stride_cs + cols[None, :])
        tl.store(c_ptrs, best, mask=row_ok[:, None] & (cols[None, :] < K_PAD))


@triton.jit
def _kmm_combine_kernel(
    cand_ptr, v_ptr, en_ptr, out_ptr, idx_ptr,
    H, F, S, topk,
    stride_cr, stride_cf, stride_cs,
    stride_vf, stride_vn, stride_vd,
    stride_ob, stride_oh, stride_od,
    D_V: tl.constexpr, BLOCK_DV: tl.constexpr, K_PAD: tl.constexpr,
    LOG_S: tl.constexpr, WRITE_IDX: tl.constexpr,
):
    """Stage 2, program per row: merge splits, softmax, gather, sum fields."""
    row = tl.program_id(0).to(tl.int64)
    pos = tl.arange(0, K_PAD)
    splits = tl.arange(0, 1 << LOG_S)
    dv = tl.arange(0, BLOCK_DV)
    dv_ok = dv < D_V
    selected = pos < topk
    acc = tl.zeros([BLOCK_DV], dtype=tl.float32)
    for f in range(F):
        field = tl.cast(f, tl.int64)  # field * stride_vf can pass 2**31
        if tl.load(en_ptr + field) != 0:
            c_ptrs = (cand_ptr + row * stride_cr + field * stride_cf
                      + splits[:, None] * stride_cs + pos[None, :])
            c = tl.load(c_ptrs, mask=(splits < S)[:, None], other=_SENTINEL)
            scores, slots = _unpack(tl.reshape(_merge_rows_tree(c, LOG_S), [K_PAD]))
            scores = tl.where(selected, scores, float("-inf"))
            p = tl.exp(scores - tl.max(scores, axis=0))
            w = p / tl.sum(p, axis=0)
            v_ptrs = (v_ptr + field * stride_vf + slots[:, None] * stride_vn
                      + dv[None, :] * stride_vd)
            v = tl.load(v_ptrs, mask=selected[:, None] & dv_ok[None, :], other=0.0)
            acc += tl.sum(w[:, None] * v.to(tl.float32), axis=0)
            if WRITE_IDX:
                tl.store(idx_ptr + (row * F + field) * K_PAD + pos, slots, mask=selected)
    o_ptrs = out_ptr + (row // H) * stride_ob + (row % H) * stride_oh + dv * stride_od
    tl.store(o_ptrs, acc.to(out_ptr.dtype.element_ty), mask=dv_ok)


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _check_inputs(q, keys, values, enabled, topk) -> None:
    """Fail before launch with a ``ValueError`` naming the offending argument
    (explicit checks, not ``assert``: they must hold under ``python -O`` too)."""
    _require(q.ndim == 3, f"q must be [B, H, d_k], got shape {tuple(q.shape)}")
    _require(keys.ndim == 3, f"keys must be [F, N, d_k], got shape {tuple(keys.shape)}")
    _require(values.ndim == 3, f"values must be [F, N, d_v], got shape {tuple(values.shape)}")
    _require(enabled.ndim == 1, f"enabled must be [F], got shape {tuple(enabled.shape)}")
    F, N, d_k = keys.shape
    _require(q.shape[2] == d_k, f"q d_k={q.shape[2]} != keys d_k={d_k}")
    _require(values.shape[:2] == (F, N), f"values [F, N]={tuple(values.shape[:2])} != keys [F, N]={(F, N)}")
    _require(enabled.shape[0] == F, f"enabled has {enabled.shape[0]} fields, keys have {F}")
    _require(q.dtype in _SUPPORTED_DTYPES, f"q dtype {q.dtype} not in {_SUPPORTED_DTYPES}")
    _require(keys.dtype == q.dtype and values.dtype == q.dtype,
             f"dtypes must match: q {q.dtype}, keys {keys.dtype}, values {values.dtype}")
    _require(enabled.dtype == torch.bool, f"enabled must be bool, got {enabled.dtype}")
    devices = {t.device for t in (q, keys, values, enabled)}
    _require(len(devices) == 1, f"all inputs must share one device, got {devices}")
    for name, t in (("q", q), ("keys", keys), ("values", values)):
        _require(t.stride(-1) == 1, f"{name} needs a contiguous last dim, got strides {t.stride()}")
    _require(enabled.is_contiguous(), "enabled must be contiguous")
    _require(isinstance(topk, int) and 1 <= topk <= N, f"topk={topk} must be an int in [1, N={N}]")
    _require(N <= _MAX_SLOTS, f"N={N} exceeds the 2**32 - 1 slots a packed key can index")
    _require(min(q.shape) > 0 and min(values.shape) > 0 and F > 0, "empty inputs are not supported")


@functools.lru_cache(maxsize=None)
def _sm_count(device_index: int) -> int:
    return torch.cuda.get_device_properties(device_index).multi_processor_count


def _num_splits(row_blocks: int, F: int, N: int, block_n: int, device: torch.device) -> int:
    """Enough (row block, field, split) programs to fill the GPU twice over.

    Capped so each split streams >= 4 key blocks and stage 2 merges <= 32
    (its merge tree compiles once per power of two of splits).
    """
    if device.type != "cuda":
        return 1
    wanted = triton.cdiv(2 * _sm_count(device.index or 0), row_blocks * F)
    return max(1, min(wanted, 32, triton.cdiv(N, 4 * block_n)))


def kmm_decode_triton(
    q: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    enabled: torch.Tensor,
    topk: int,
    *,
    block_m: int | None = None,
    block_n: int | None = None,
    num_splits: int | None = None,
    return_indices: bool = False,
):
    """KMM retrieval summed over enabled fields; same contract as the reference.

    q: [B, H, d_k]; keys: [F, N, d_k]; values: [F, N, d_v]; enabled: [F] bool
    returns out: [B, H, d_v] in q's dtype, and with ``return_indices`` also
    idx: [B, H, F, topk] int64, the selected slots in score order (-1 for
    disabled fields), so tests can check the kernel's own selection.
    block_m / block_n / num_splits override the tiling (powers of two >= 16;
    block_n >= next_pow2(topk)). The defaults keep block_n at the top-k width,
    since the per-block sorts cost O(log^2 block_n) per key, and grow block_m
    with the row count to re-read the keys fewer times; they were sized from
    sm_90a register counts without spills, not tuned on a GPU yet.
    """
    _check_inputs(q, keys, values, enabled, topk)
    B, H, d_k = q.shape
    F, N, d_v = values.shape
    R = B * H
    k_pad = triton.next_power_of_2(topk)
    block_m = block_m or (16 if R <= 16 else 32 if R <= 256 else 64)
    block_n = block_n or max(16, k_pad)
    for name, val in (("block_m", block_m), ("block_n", block_n)):
        _require(val >= 16 and val & (val - 1) == 0, f"{name}={val} must be a power of two >= 16")
    _require(block_n >= k_pad, f"block_n={block_n} must be >= next_pow2(topk)={k_pad}")

    row_blocks = triton.cdiv(R, block_m)
    S = num_splits or _num_splits(row_blocks, F, N, block_n, q.device)
    _require(S >= 1, f"num_splits={S} must be >= 1")
    slots_per_split = triton.cdiv(triton.cdiv(N, S), block_n) * block_n
    S = triton.cdiv(N, slots_per_split)  # no empty splits

    block_dv = triton.next_power_of_2(d_v)
    en = enabled.view(torch.uint8)
    cand = torch.empty((R, F, S, k_pad), dtype=torch.int64, device=q.device)
    out = torch.empty((B, H, d_v), dtype=q.dtype, device=q.device)
    idx = torch.full((R, F, k_pad), -1, dtype=torch.int64, device=q.device) if return_indices else cand
    # Triton launches on the current device, not the tensors' one.
    with torch.cuda.device(q.device) if q.is_cuda else contextlib.nullcontext():
        _kmm_topk_partial_kernel[(row_blocks, F, S)](
            q, keys, en, cand,
            R, H, N, topk, slots_per_split, 1.0 / math.sqrt(d_k),
            *q.stride(), *keys.stride(), *cand.stride()[:3],
            D_K=d_k, BLOCK_D=max(16, triton.next_power_of_2(d_k)),
            BLOCK_M=block_m, BLOCK_N=block_n, K_PAD=k_pad,
            # fp32 must not drop to TF32; and the interpreter's bf16 tl.dot is
            # wrong (triton 3.9), while bf16/fp16 products are exact in fp32.
            DOT_IN_FP32=q.dtype == torch.float32 or q.device.type != "cuda",
            num_warps=4 if block_m * block_n <= 512 else 8,
        )
        _kmm_combine_kernel[(R,)](
            cand, values, en, out, idx,
            H, F, S, topk,
            *cand.stride()[:3], *values.stride(), *out.stride(),
            D_V=d_v, BLOCK_DV=block_dv, K_PAD=k_pad,
            # >= 2 rows: with triton 3.9 for sm_90a, a [1, K] candidate tile
            # took minutes to compile and spilled heavily.
            LOG_S=max(1, (S - 1).bit_length()), WRITE_IDX=return_indices,
            num_warps=4 if k_pad * block_dv <= 8192 else 8,  # the [k, d_v] gather tile
        )
    if return_indices:
        return out, idx[..., :topk].reshape(B, H, F, topk)
    return out
