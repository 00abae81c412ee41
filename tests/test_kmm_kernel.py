"""Triton KMM decode kernel vs the PyTorch reference.

Without CUDA the kernel runs under the Triton interpreter on CPU tensors;
with CUDA the same tests run compiled on the GPU (marked ``gpu``) and the CPU
variants skip, since one process cannot hold both builds of a kernel.

The interpreter is chosen when triton is first imported, and conftest already
imports it (transformers -> torch._dynamo). Setting TRITON_INTERPRET=1 here
is then too late, so the CPU kernel tests rerun in a child pytest that sets
it from the start (``test_cpu_kernel_tests_in_interpreter_process``).
Running ``TRITON_INTERPRET=1 pytest tests/test_kmm_kernel.py`` runs them
in-process instead.
"""

from __future__ import annotations

import importlib
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WANT_INTERPRETER = not torch.cuda.is_available()
if WANT_INTERPRETER:
    os.environ["TRITON_INTERPRET"] = "1"  # effective only if triton is not imported yet

triton = pytest.importorskip("triton")

from lokiserve.kernels.kmm import dispatch, kmm_decode, kmm_decode_reference  # noqa: E402
from lokiserve.kernels.kmm import triton_kmm  # noqa: E402


def _interpreted(fn) -> bool:
    return type(fn).__name__ == "InterpretedFunction"


# True when triton itself (its tl.sort, tl.max, ...) was imported interpreted.
TRITON_INTERPRETED = _interpreted(triton.language.standard.max)
if TRITON_INTERPRETED and not _interpreted(triton_kmm._kmm_topk_partial_kernel):
    triton_kmm = importlib.reload(triton_kmm)  # kernel module imported before the switch

CPU_IN_PROCESS = WANT_INTERPRETER and TRITON_INTERPRETED
CPU_IN_CHILD = WANT_INTERPRETER and not TRITON_INTERPRETED
HAS_GPU = torch.cuda.is_available() and not TRITON_INTERPRETED

DEVICES = [
    pytest.param("cpu", marks=pytest.mark.skipif(not CPU_IN_PROCESS, reason=(
        "triton was imported compiled before this module: run by "
        "test_cpu_kernel_tests_in_interpreter_process" if CPU_IN_CHILD
        else "CUDA present: the kernel tests run compiled on the GPU"))),
    pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(
        not HAS_GPU, reason="needs CUDA and a compiled (not interpreted) kernel")]),
]


@pytest.mark.skipif(not CPU_IN_CHILD, reason="CPU kernel tests run in this process")
def test_cpu_kernel_tests_in_interpreter_process():
    repo = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(Path(__file__).resolve()),
           "-k", "cpu and not interpreter_process"]
    r = subprocess.run(cmd, cwd=repo, env=dict(os.environ, TRITON_INTERPRET="1"),
                       capture_output=True, text=True, timeout=900)
    report = f"$ TRITON_INTERPRET=1 {' '.join(cmd)}\n{r.stdout[-6000:]}\n{r.stderr[-2000:]}"
    assert r.returncode == 0, report
    summary = r.stdout.strip().splitlines()[-1]
    assert "passed" in summary and "skipped" not in summary, report


# Output tolerances: one rounding of the result to the dtype, plus fp32
# accumulation-order noise.
OUT_TOL = {
    torch.float32: dict(atol=1e-5, rtol=1e-5),
    torch.bfloat16: dict(atol=1e-2, rtol=1.6e-2),
    torch.float16: dict(atol=1e-3, rtol=2e-3),
}


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


def _inputs(device, dtype=torch.float32, B=2, H=2, F=2, N=40, d_k=32, d_v=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, d_k, generator=g)
    keys = torch.randn(F, N, d_k, generator=g)
    values = torch.randn(F, N, d_v, generator=g)
    enabled = torch.ones(F, dtype=torch.bool)
    return [t.to(device, dtype) if t.is_floating_point() else t.to(device)
            for t in (q, keys, values, enabled)]


def _ref_scores(q, keys):
    """[B, H, F, N] fp32 scores exactly as the reference computes them."""
    scale = 1.0 / math.sqrt(keys.shape[-1])
    return torch.einsum("bhd,fnd->bhfn", q.float(), keys.float()) * scale


def _ref_indices(q, keys, topk):
    """The reference's selection, in its order (stable: lower slot first)."""
    order = torch.sort(_ref_scores(q, keys), dim=-1, descending=True, stable=True)
    return order.indices[..., :topk]


def _run(q, keys, values, enabled, topk, **kw):
    out, idx = triton_kmm.kmm_decode_triton(q, keys, values, enabled, topk,
                                            return_indices=True, **kw)
    assert out.shape == q.shape[:2] + values.shape[-1:] and out.dtype == q.dtype
    assert idx.shape == (*q.shape[:2], keys.shape[0], topk)
    return out, idx


def _check_out(out, q, keys, values, enabled, topk):
    ref = kmm_decode_reference(q, keys, values, enabled, topk)
    torch.testing.assert_close(out.float(), ref.float(), **OUT_TOL[q.dtype])


def _check_disabled(idx, enabled):
    assert (idx[:, :, ~enabled] == -1).all(), "a disabled field selected slots"


def _check_exact_selection(idx, q, keys, enabled, topk):
    """Same slots in the same order, ties included (inputs with exact scores)."""
    ref = _ref_indices(q, keys, topk)
    assert torch.equal(idx[:, :, enabled].cpu(), ref[:, :, enabled].cpu())
    _check_disabled(idx, enabled)


def _check_selection_where_clear(idx, q, keys, enabled, topk):
    """Same slot sets wherever the k-th and next score differ by > the dtype eps.

    Returns the fraction of (token, head, field) rows that were checked, so a
    caller can make sure the check was not vacuous.
    """
    scores = _ref_scores(q, keys)
    top = torch.sort(scores, dim=-1, descending=True, stable=True)
    if topk < scores.shape[-1]:
        gap = top.values[..., topk - 1] - top.values[..., topk]
    else:
        gap = torch.full(scores.shape[:-1], math.inf, device=scores.device)
    clear = (gap > torch.finfo(q.dtype).eps * scores.abs().amax(-1)) & enabled
    same = (idx.sort(dim=-1).values == top.indices[..., :topk].sort(dim=-1).values).all(-1)
    assert same[clear].all(), f"selection differs in {(~same & clear).sum().item()} rows"
    _check_disabled(idx, enabled)
    return clear[..., enabled].float().mean().item()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_random_inputs_match_reference(device, dtype):
    q, keys, values, enabled = _inputs(device, dtype, seed=1)
    out, idx = _run(q, keys, values, enabled, topk=5)
    _check_out(out, q, keys, values, enabled, 5)
    assert _check_selection_where_clear(idx, q, keys, enabled, 5) > 0.5


def test_exact_ties_straddling_kth_pick_lower_slots(device):
    """Four distinct keys, each repeated at 12 scattered slots: top-15 takes all
    12 copies of the best key and the 3 lowest slots of the runner-up, across
    block and split boundaries."""
    g = torch.Generator().manual_seed(2)
    F, N, d_k, topk = 2, 48, 16, 15
    distinct = torch.randint(-2, 3, (F, 4, d_k), generator=g).float()
    which = torch.stack([torch.randperm(N, generator=g) % 4 for _ in range(F)])
    keys = torch.gather(distinct, 1, which[..., None].expand(F, N, d_k)).contiguous()
    q = torch.randint(-2, 3, (3, 1, d_k), generator=g).float()
    values = torch.randn(F, N, 8, generator=g)
    enabled = torch.ones(F, dtype=torch.bool)

    top = torch.sort(_ref_scores(q, keys), dim=-1, descending=True, stable=True).values
    assert (top[..., topk - 1] == top[..., topk]).any(), "no tie straddles the k-th place"

    q, keys, values, enabled = (t.to(device) for t in (q, keys, values, enabled))
    out, idx = _run(q, keys, values, enabled, topk, block_n=16, num_splits=3)
    _check_exact_selection(idx, q, keys, enabled, topk)
    _check_out(out, q, keys, values, enabled, topk)


def test_all_negative_scores(device):
    q, keys, values, enabled = _inputs(device, N=24, seed=3)
    q, keys = q.abs() + 0.1, -(keys.abs() + 0.1)
    assert (_ref_scores(q, keys) < 0).all()
    out, idx = _run(q, keys, values, enabled, topk=4)
    assert _check_selection_where_clear(idx, q, keys, enabled, 4) > 0.5
    _check_out(out, q, keys, values, enabled, 4)


def test_rows_of_one_tile_wanting_different_blocks(device):
    """Head 0 ranks slot 0 first, head 1 ranks the last slot first: a block
    may be skipped only when no row of the tile needs it."""
    F, N, d_k, topk = 1, 64, 16, 4
    keys = torch.zeros(F, N, d_k)
    keys[..., 0] = torch.arange(N, dtype=torch.float32)
    q = torch.zeros(1, 2, d_k)
    q[0, 0, 0], q[0, 1, 0] = -1.0, 1.0
    values = torch.randn(F, N, 8, generator=torch.Generator().manual_seed(10))
    args = [t.to(device) for t in (q, keys, values, torch.ones(F, dtype=torch.bool))]
    out, idx = _run(*args, topk, block_n=16)
    assert idx[0, 0, 0].tolist() == [0, 1, 2, 3] and idx[0, 1, 0].tolist() == [63, 62, 61, 60]
    _check_out(out, *args, topk)


def test_all_fields_disabled_gives_exact_zero(device):
    q, keys, values, enabled = _inputs(device, seed=4)
    values.fill_(float("nan"))
    out, idx = _run(q, keys, values, torch.zeros_like(enabled), topk=3)
    assert torch.equal(out, torch.zeros_like(out))
    assert (idx == -1).all()


def test_one_field_disabled_contributes_nothing(device):
    q, keys, values, enabled = _inputs(device, N=24, seed=5)
    keys[0], values[0] = float("nan"), float("inf")  # must never be read into the sum
    enabled[0] = False
    out, idx = _run(q, keys, values, enabled, topk=4)
    only = kmm_decode_reference(q, keys[1:], values[1:], enabled[1:], 4)
    torch.testing.assert_close(out, only, **OUT_TOL[q.dtype])
    assert _check_selection_where_clear(idx, q, keys, enabled, 4) > 0.5


def test_topk_equals_n(device):
    q, keys, values, enabled = _inputs(device, N=12, seed=6)
    out, idx = _run(q, keys, values, enabled, topk=12)
    assert torch.equal(idx.sort(dim=-1).values.cpu(), torch.arange(12).expand_as(idx))
    _check_out(out, q, keys, values, enabled, 12)


def test_n_not_a_multiple_of_block_across_splits(device):
    q, keys, values, enabled = _inputs(device, F=1, N=53, seed=7)
    out, idx = _run(q, keys, values, enabled, topk=6, block_n=16, num_splits=4)
    assert _check_selection_where_clear(idx, q, keys, enabled, 6) > 0.5
    _check_out(out, q, keys, values, enabled, 6)


def test_strided_views_and_several_row_blocks(device):
    """18 rows (two row blocks of 16), q a head-strided view, keys and values
    field-strided views: the launcher must honour every stride it passes."""
    q, keys, values, enabled = _inputs(device, B=9, H=4, F=4, N=20, seed=11)
    q, keys, values, enabled = q[:, ::2], keys[::2], values[::2], enabled[::2].contiguous()
    assert not (q.is_contiguous() or keys.is_contiguous() or values.is_contiguous())
    out, idx = _run(q, keys, values, enabled, topk=3)
    assert _check_selection_where_clear(idx, q, keys, enabled, 3) > 0.5
    _check_out(out, q, keys, values, enabled, 3)


def _forbid(name):
    def fail(*args, **kwargs):
        raise AssertionError(f"dispatcher called {name}")
    return fail


def test_dispatch_uses_cpu_path_on_cpu(monkeypatch):
    from lokiserve.kernels.kmm import kmm_decode_cpu

    monkeypatch.setattr(dispatch, "kmm_decode_triton", _forbid("kmm_decode_triton"))
    args = _inputs("cpu", seed=8)
    out = kmm_decode(*args, 3)
    assert torch.equal(out, kmm_decode_cpu(*args, 3))
    torch.testing.assert_close(out, kmm_decode_reference(*args, 3), rtol=1e-5, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_GPU, reason="needs CUDA and a compiled kernel")
def test_dispatch_uses_triton_on_cuda(monkeypatch):
    args = _inputs("cuda", seed=8)
    expected = triton_kmm.kmm_decode_triton(*args, 3)
    monkeypatch.setattr(dispatch, "kmm_decode_reference", _forbid("kmm_decode_reference"))
    assert torch.equal(kmm_decode(*args, 3), expected)


def test_package_works_without_triton():
    """``import lokiserve.kernels`` must not need triton; only the Triton entry
    point may fail, and it must say why."""
    code = """if True:
        import sys
        sys.modules["triton"] = None  # as if not installed
        import torch
        import lokiserve.kernels as k
        q, keys, values = torch.randn(1, 2, 8), torch.randn(2, 6, 8), torch.randn(2, 6, 4)
        enabled = torch.ones(2, dtype=torch.bool)
        torch.testing.assert_close(k.kmm_decode(q, keys, values, enabled, 3),
                                   k.kmm_decode_reference(q, keys, values, enabled, 3), rtol=1e-5, atol=1e-5)
        try:
            k.kmm_decode_triton(q, keys, values, enabled, 3)
        except ImportError as e:
            assert "needs the `triton` package" in str(e), e
        else:
            raise AssertionError("kmm_decode_triton ran without triton")
    """
    r = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]


@pytest.mark.parametrize("change, kw, match", [
    pytest.param(lambda q, **_: dict(q=q[0]), {}, r"q must be \[B, H, d_k\]", id="q-rank"),
    pytest.param(lambda q, **_: dict(q=q[..., :16]), {}, "q d_k=16 != keys d_k=32", id="d_k"),
    pytest.param(lambda values, **_: dict(values=values[:, :10]), {}, r"values \[F, N\]", id="values-N"),
    pytest.param(lambda enabled, **_: dict(enabled=enabled[:1]), {}, "enabled has 1 fields", id="enabled-F"),
    pytest.param(lambda enabled, **_: dict(enabled=enabled.int()), {}, "enabled must be bool", id="enabled-dtype"),
    pytest.param(lambda keys, **_: dict(keys=keys.half()), {}, "dtypes must match", id="mixed-dtypes"),
    pytest.param(lambda q, keys, values, **_: dict(q=q.double(), keys=keys.double(), values=values.double()),
                 {}, "not in", id="float64"),
    pytest.param(lambda keys, **_: dict(keys=keys.transpose(1, 2).contiguous().transpose(1, 2)),
                 {}, "keys needs a contiguous last dim", id="keys-stride"),
    pytest.param(lambda **_: dict(topk=0), {}, r"topk=0 must be an int in \[1, N=40\]", id="topk-0"),
    pytest.param(lambda **_: dict(topk=41), {}, r"topk=41 must be an int in \[1, N=40\]", id="topk-gt-N"),
    pytest.param(lambda **_: dict(topk=20), dict(block_n=16), "block_n=16 must be >= next_pow2", id="block_n"),
    pytest.param(lambda **_: {}, dict(block_m=24), "block_m=24 must be a power of two", id="block_m"),
])
def test_launcher_rejects_bad_inputs(change, kw, match):
    q, keys, values, enabled = _inputs("cpu")
    args = dict(q=q, keys=keys, values=values, enabled=enabled, topk=3)
    args.update(change(**args))
    with pytest.raises(ValueError, match=match):
        triton_kmm.kmm_decode_triton(**args, **kw)


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_GPU, reason="needs CUDA and a compiled kernel")
def test_int64_offsets_large_table():
    """Field 1 of values starts at element 2**31: int32 offsets would wrap."""
    F, N, d_k, d_v = 2, 2**22, 16, 512
    if torch.cuda.get_device_properties(0).total_memory < 40 * 2**30:
        pytest.skip("needs ~30 GiB of GPU memory (the reference upcasts all values)")
    g = torch.Generator(device="cuda").manual_seed(9)
    q = torch.randn(1, 2, d_k, device="cuda", dtype=torch.bfloat16, generator=g)
    keys = torch.randn(F, N, d_k, device="cuda", dtype=torch.bfloat16, generator=g)
    values = torch.randn(F, N, d_v, device="cuda", dtype=torch.bfloat16, generator=g)
    enabled = torch.tensor([False, True], device="cuda")
    assert values.stride(0) >= 2**31
    out, idx = _run(q, keys, values, enabled, topk=8)
    _check_selection_where_clear(idx, q, keys, enabled, 8)
    _check_out(out, q, keys, values, enabled, 8)
