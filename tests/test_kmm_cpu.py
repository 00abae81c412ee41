"""The CPU-tuned KMM path (``kmm.cpu``) against the PyTorch reference.

The reference is the oracle: same selected slots (ties resolve to the lower
slot), same output within float rounding, for every shape and input that the
two-stage top-k could get wrong.
"""

from __future__ import annotations

import pytest
import torch

from lokiserve.kernels.kmm import kmm_decode, kmm_decode_cpu, kmm_decode_reference
from lokiserve.kernels.kmm.cpu import BLOCK, blocked_topk
from lokiserve.kernels.kmm.naive import select_topk


@pytest.fixture(autouse=True, params=["native", "pytorch"])
def cpu_impl(request, monkeypatch):
    """Every test runs on both CPU implementations: the native scan
    (``cpu_scan.c``) and the pure PyTorch path it falls back to."""
    from lokiserve.kernels.kmm import native

    monkeypatch.setenv("LOKISERVE_KMM_NATIVE", "1" if request.param == "native" else "0")
    if request.param == "native" and native.scan_library() is None:
        pytest.skip("no C compiler: the native scan is unavailable here")
    return request.param


def _inputs(B=6, H=4, F=5, N=256, dk=32, dv=16, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, dk, generator=g).to(dtype)
    keys = torch.randn(F, N, dk, generator=g).to(dtype)
    values = torch.randn(F, N, dv, generator=g).to(dtype)
    return q, keys, values


def _close(a, b, dtype=torch.float32):
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(a.float(), b.float(), atol=tol, rtol=tol)


@pytest.mark.parametrize("B", [1, 7, 40, 300])
@pytest.mark.parametrize("topk", [1, 4, 8])
def test_random_matches_reference(B, topk):
    q, keys, values = _inputs(B=B, seed=B * 31 + topk)
    enabled = torch.ones(keys.shape[0], dtype=torch.bool)
    _close(kmm_decode_cpu(q, keys, values, enabled, topk), kmm_decode_reference(q, keys, values, enabled, topk))


def test_blocked_selection_is_the_reference_selection():
    torch.manual_seed(1)
    scores = torch.randn(64, 3, 256)
    got = blocked_topk(scores, 4)
    assert got is not None
    want = select_topk(scores, 4)
    assert torch.equal(got[1], want[1]) and torch.equal(got[0], want[0])


def test_top_scores_spread_over_one_block_and_many_blocks():
    """All k winners in one block, or one winner in each of k blocks."""
    scores = torch.randn(2, 1, 256) * 0.01
    scores[0, 0, 32:36] = torch.tensor([5.0, 4.0, 3.0, 2.0])  # one block
    scores[1, 0, [3, 40, 100, 250]] = torch.tensor([2.0, 5.0, 3.0, 4.0])  # four blocks
    got = blocked_topk(scores, 4)
    assert got is not None
    assert got[1][0, 0].tolist() == [32, 33, 34, 35]
    assert got[1][1, 0].tolist() == [40, 250, 100, 3]


@pytest.mark.parametrize("where", ["same_block", "across_blocks", "outside_candidates"])
def test_exact_ties_resolve_to_lower_slot(where):
    """A tie straddling the k-th place is detected and decided like the
    reference (stable: lower slot first), wherever the tied slots sit."""
    q, keys, values = _inputs(B=64, H=2, F=2, N=128, dk=8, dv=8, seed=5)  # 128 rows: the blocked path
    keys = keys * 0.01
    q = torch.ones_like(q)
    hi = torch.full((8,), 1.0)
    if where == "same_block":
        slots = [0, 1, 2, 5, 6]  # 5 equal maxima for top-4, all in block 0
    elif where == "across_blocks":
        slots = [60, 17, 33, 2, 110]
    else:  # the tied 5th slot sits in a block that the first stage never selects
        slots = [1, 2, 3, 4, 100]
    for s in slots:
        keys[0, s] = hi
    enabled = torch.ones(2, dtype=torch.bool)
    scores = torch.einsum("bhd,fnd->bhfn", q, keys).reshape(-1, 2, 128) / 8 ** 0.5
    assert blocked_topk(scores, 4) is None  # the tie is detected, whichever block holds the 5th slot
    out = kmm_decode_cpu(q, keys, values, enabled, 4)
    _close(out, kmm_decode_reference(q, keys, values, enabled, 4))
    # the reference keeps the 4 lowest of the 5 tied slots: check that directly
    kept = sorted(slots)[:4]
    expect = values[0, kept].float().mean(0)  # equal scores -> equal weights
    field1 = kmm_decode_reference(q, keys[1:], values[1:], torch.ones(1, dtype=torch.bool), 4)
    _close(out[0, 0], expect + field1[0, 0].float())


@pytest.mark.parametrize("B", [6, 300])  # 300 x 4 heads: prefill-sized, live fields copied out first
def test_disabled_fields_are_not_searched(B):
    q, keys, values = _inputs(B=B, seed=3)
    for mask in ([1, 0, 1, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]):
        enabled = torch.tensor(mask, dtype=torch.bool)
        got = kmm_decode_cpu(q, keys, values, enabled, 4)
        _close(got, kmm_decode_reference(q, keys, values, enabled, 4))
    assert torch.count_nonzero(got) == 0


@pytest.mark.parametrize("N,topk", [(20, 4), (64, 4), (64, 3), (256, 16), (256, 256), (48, 48), (1, 1)])
def test_small_and_odd_slot_counts(N, topk):
    """N not a multiple of the block, too few blocks, topk = N: the plain path."""
    q, keys, values = _inputs(B=40, N=N, seed=N + topk)
    enabled = torch.ones(keys.shape[0], dtype=torch.bool)
    _close(kmm_decode_cpu(q, keys, values, enabled, topk), kmm_decode_reference(q, keys, values, enabled, topk))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_dtypes(dtype):
    q, keys, values = _inputs(B=9, dtype=dtype, seed=11)
    enabled = torch.ones(keys.shape[0], dtype=torch.bool)
    got = kmm_decode_cpu(q, keys, values, enabled, 4)
    assert got.dtype == dtype
    _close(got, kmm_decode_reference(q, keys, values, enabled, 4), dtype)


def test_empty_batch_and_bad_topk():
    q, keys, values = _inputs(B=0)
    enabled = torch.ones(keys.shape[0], dtype=torch.bool)
    assert kmm_decode_cpu(q, keys, values, enabled, 4).shape == (0, 4, 16)
    q, keys, values = _inputs(B=2, N=8)
    with pytest.raises(ValueError):
        kmm_decode_cpu(q, keys, values, enabled, 9)


def test_dispatch_uses_cpu_path_on_cpu_tensors(monkeypatch):
    calls = []
    import lokiserve.kernels.kmm.dispatch as dispatch

    real = dispatch.kmm_decode_cpu
    monkeypatch.setattr(dispatch, "kmm_decode_cpu", lambda *a: calls.append(1) or real(*a))
    q, keys, values = _inputs(B=2)
    kmm_decode(q, keys, values, torch.ones(keys.shape[0], dtype=torch.bool), 4)
    assert calls == [1]
    assert BLOCK == 16
