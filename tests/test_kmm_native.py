"""The native CPU scan (``cpu_scan.c`` via ``kmm.native``) against the reference.

``test_kmm_cpu.py`` runs every ``kmm_decode_cpu`` case with and without the
native scan; this file covers what only the scan has: its build and cache,
the lower-bound skip (ties and winners placed around its 16-slot groups), the
threaded row split, NaN propagation, its limits, and the fallback when no
compiler works.
"""

from __future__ import annotations

import math

import pytest
import torch

from lokiserve.kernels.kmm import kmm_decode_cpu, kmm_decode_reference, native
from lokiserve.kernels.kmm.naive import kmm_field_outputs, select_topk

pytestmark = pytest.mark.skipif(native.scan_library() is None, reason="no C compiler: native scan unavailable")


def _reference_combine(scores, values, enabled, topk):
    """(R, F, N) scores -> (R, D) with the reference's selection and softmax."""
    live = enabled.nonzero().flatten()
    s = scores[:, live]
    top, idx = select_topk(s, topk)
    w = torch.softmax(top, dim=-1)
    picked = values[live][torch.arange(len(live)).view(1, -1, 1), idx]  # (R, F, k, D)
    return torch.einsum("rfk,rfkd->rd", w, picked)


def test_build_is_cached_and_reused(tmp_path):
    first = native.build(out_dir=tmp_path)
    assert first.exists() and first.parent == tmp_path
    mtime = first.stat().st_mtime_ns
    assert native.build(out_dir=tmp_path) == first  # same source, compiler, machine: no rebuild
    assert first.stat().st_mtime_ns == mtime
    assert not list(tmp_path.glob("*.tmp"))  # the temp file was renamed, not left behind


def test_build_failure_is_reported_and_the_pytorch_path_takes_over(tmp_path, monkeypatch, caplog):
    with pytest.raises(RuntimeError, match="no C compiler"):
        monkeypatch.setattr(native, "_compiler", lambda: None)
        native.build(out_dir=tmp_path)
    with pytest.raises(RuntimeError, match="failed"):
        native.build(cc="false", out_dir=tmp_path)  # `false` exits 1: a compiler that fails
    assert not list(tmp_path.iterdir())
    # A fresh process state whose build fails: warn once, return None, stay exact.
    monkeypatch.setattr(native, "_lib", None)
    monkeypatch.setattr(native, "_tried", False)
    monkeypatch.setattr(native, "build", lambda: (_ for _ in ()).throw(RuntimeError("no compiler here")))
    with caplog.at_level("WARNING"):
        assert native.scan_library() is None
    assert "PyTorch path" in caplog.text and "no compiler here" in caplog.text
    g = torch.Generator().manual_seed(0)
    q, keys, values = torch.randn(3, 4, 16, generator=g), torch.randn(2, 64, 16, generator=g), torch.randn(2, 64, 8, generator=g)
    en = torch.ones(2, dtype=torch.bool)
    torch.testing.assert_close(kmm_decode_cpu(q, keys, values, en, 4), kmm_decode_reference(q, keys, values, en, 4))


def test_env_switch_turns_the_scan_off(monkeypatch):
    monkeypatch.setenv("LOKISERVE_KMM_NATIVE", "0")
    assert native.scan_library() is None and native.max_topk() == 0
    monkeypatch.setenv("LOKISERVE_KMM_NATIVE", "1")
    assert native.scan_library() is not None and native.max_topk() == 64


@pytest.mark.parametrize(
    "N,topk", [(N, k) for N in (1, 5, 16, 17, 100, 256, 1000) for k in (1, 4, 16, 17) if k <= N]
)
def test_random_scores_match_reference(N, topk):
    g = torch.Generator().manual_seed(N * 100 + topk)
    scores = torch.randn(37, 3, N, generator=g)
    values = torch.randn(3, N, 24, generator=g)
    enabled = torch.tensor([True, False, True])
    torch.testing.assert_close(native.topk_combine(scores, values, enabled, topk), _reference_combine(scores, values, enabled, topk))


@pytest.mark.parametrize("layout", ["one_group", "one_chunk", "last_slots", "spread"])
def test_winners_anywhere_relative_to_the_skip_groups(layout):
    """The lower bound comes from 16 interleaved groups and the skip from 16
    contiguous chunks: winners in one group, one chunk, the tail, or spread."""
    N, k = 256, 4
    scores = torch.rand(1, 1, N) * 0.1
    slots = {"one_group": [3, 19, 35, 51], "one_chunk": [32, 33, 34, 35], "last_slots": [252, 253, 254, 255],
             "spread": [0, 77, 160, 255]}[layout]
    for rank, s in enumerate(slots):
        scores[0, 0, s] = 10.0 - rank
    values = torch.eye(N).unsqueeze(0)  # value of slot s = one-hot(s): the output shows which slots won
    out = native.topk_combine(scores, values, torch.ones(1, dtype=torch.bool), k)
    assert sorted(out[0].nonzero().flatten().tolist()) == sorted(slots)
    torch.testing.assert_close(out, _reference_combine(scores, values, torch.ones(1, dtype=torch.bool), k))


@pytest.mark.parametrize("tied", [[0, 1, 2, 3, 4], [5, 21, 37, 53, 69], [250, 10, 130, 66, 3], list(range(256))])
def test_ties_resolve_to_the_lower_slot(tied):
    N, k = 256, 4
    scores = torch.full((1, 1, N), -1.0)
    scores[0, 0, tied] = 2.0
    values = torch.eye(N).unsqueeze(0)
    out = native.topk_combine(scores, values, torch.ones(1, dtype=torch.bool), k)
    assert out[0].nonzero().flatten().tolist() == sorted(tied)[:k]
    torch.testing.assert_close(out[0, sorted(tied)[:k]], torch.full((k,), 0.25))


def test_threaded_split_equals_one_thread(monkeypatch):
    g = torch.Generator().manual_seed(7)
    scores = torch.randn(1001, 4, 256, generator=g)
    values = torch.randn(4, 256, 64, generator=g)
    enabled = torch.tensor([True, True, False, True])
    monkeypatch.setattr(native, "PARALLEL_MIN_SCORES", 1 << 62)
    one = native.topk_combine(scores, values, enabled, 4)
    monkeypatch.setattr(native, "PARALLEL_MIN_SCORES", 0)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        split = native.topk_combine(scores, values, enabled, 4)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, split)  # same rows, same arithmetic: bit-identical


def test_nan_scores_poison_their_row_like_the_reference():
    q = torch.randn(3, 2, 8)
    keys, values = torch.randn(2, 32, 8), torch.randn(2, 32, 4)
    q[1, 0, 0] = float("nan")
    en = torch.ones(2, dtype=torch.bool)
    got, want = kmm_decode_cpu(q, keys, values, en, 4), kmm_decode_reference(q, keys, values, en, 4)
    assert torch.isnan(got[1, 0]).all() and torch.isnan(want[1, 0]).all()
    assert torch.isfinite(got[0]).all() and torch.isfinite(got[1, 1]).all()
    torch.testing.assert_close(got[0], want[0])


def test_limits_and_bad_calls():
    scores, values = torch.randn(2, 1, 100), torch.randn(1, 100, 4)
    en = torch.ones(1, dtype=torch.bool)
    with pytest.raises(ValueError, match="topk=65"):
        native.topk_combine(scores, values, en, 65)
    with pytest.raises(ValueError, match="topk=0"):
        native.topk_combine(scores, values, en, 0)
    with pytest.raises(ValueError, match="shape mismatch"):
        native.topk_combine(scores, torch.randn(1, 99, 4), en, 4)
    assert native.topk_combine(torch.randn(0, 1, 100), values, en, 4).shape == (0, 4)
    # kmm_decode_cpu with topk above the scan's limit takes the PyTorch path, still exact
    q, keys, vals = torch.randn(2, 2, 8), torch.randn(1, 100, 8), torch.randn(1, 100, 4)
    torch.testing.assert_close(kmm_decode_cpu(q, keys, vals, en, 80), kmm_decode_reference(q, keys, vals, en, 80))


def test_demo_geometry_matches_per_field_reference():
    """The served geometry (4 heads, 5 fields x 256, d 64, top-4) with one
    field disabled, decode- and prefill-sized batches."""
    g = torch.Generator().manual_seed(3)
    keys, values = torch.randn(5, 256, 64, generator=g), torch.randn(5, 256, 64, generator=g)
    en = torch.tensor([True, True, True, True, False])
    for T in (1, 32, 700):
        q = torch.randn(T, 4, 64, generator=g)
        want = kmm_field_outputs(q, keys[:4], values[:4], 4).sum(2)
        torch.testing.assert_close(kmm_decode_cpu(q, keys, values, en, 4), want)
        assert math.isclose(float((kmm_decode_cpu(q, keys, values, en, 4) - want).abs().max()), 0.0, abs_tol=1e-5)
