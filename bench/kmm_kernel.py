"""How fast is the Triton KMM decode kernel, against the PyTorch reference and HBM?

For every (batch B, heads H, slots N) point with d_k=128, d_v=256, top-32 and
4 enabled fields, times ``kmm_decode_triton`` and ``kmm_decode_reference``
with ``triton.testing.do_bench`` on CUDA and reports:

* bytes moved: the compulsory traffic, q + every key once + the selected
  value rows + out (the kernel re-reads keys once per row block, mostly from
  L2, which this model does not count);
* achieved GB/s and its fraction of the device's HBM bandwidth (a table keyed
  by device name, or ``--peak-bw``);
* FLOP/s (2*B*H*F*N*d_k for the scores + 2*B*H*F*k*d_v for the sum);
* the speedup over the reference, and the max |error| against it.

Writes ``bench/results/kmm_kernel-<device>.json`` and ``.md`` with the
command that reproduces them.

    python bench/kmm_kernel.py            # CUDA: the full grid
    python bench/kmm_kernel.py --smoke    # tiny shapes, < 1 minute, temp output

On CPU only ``--smoke`` runs: it times the reference and runs the kernel once
under the Triton interpreter as a correctness check (interpreter timings are
meaningless, so none are reported).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton's first import

import common  # noqa: E402  (puts the repository root on sys.path)

from lokiserve.kernels.kmm import kmm_decode_reference  # noqa: E402

# HBM bandwidth in bytes/s, first matching substring of the lower-cased
# device name wins (so the specific PCIe / NVL parts precede plain "h100").
PEAK_HBM_BYTES_PER_S = [
    ("h100 pcie", 2.0e12),
    ("h100 nvl", 3.9e12),
    ("h100", 3.35e12),
    ("h200", 4.8e12),
    ("a100 80gb pcie", 1.935e12),
    ("a100-sxm4-80gb", 2.0e12),
    ("a100", 1.555e12),
]

SMOKE = dict(batch_sizes=[1, 4], heads=[1, 2], slots=[64, 96], fields=2, d_k=32, d_v=64, topk=8)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16, 64, 256],
                   help="decode tokens B (default: 1 16 64 256)")
    p.add_argument("--heads", type=int, nargs="+", default=[1, 8], help="memory heads H (default: 1 8)")
    p.add_argument("--slots", type=int, nargs="+", default=[4096, 65536],
                   help="slots per field N (default: 4096 65536)")
    p.add_argument("--fields", type=int, default=4, help="fields F, all enabled (default: 4)")
    p.add_argument("--d-k", type=int, default=128, help="key dim (default: 128)")
    p.add_argument("--d-v", type=int, default=256, help="value dim (default: 256)")
    p.add_argument("--topk", type=int, default=32, help="slots selected per field (default: 32)")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default=None,
                   help="input dtype (default: bfloat16 on CUDA, float32 on CPU)")
    p.add_argument("--warmup", type=int, default=25, help="do_bench warmup in ms (default: 25)")
    p.add_argument("--rep", type=int, default=100, help="do_bench measuring time in ms (default: 100)")
    p.add_argument("--peak-bw", type=float, default=None,
                   help="HBM bytes/s for the roofline fraction (default: looked up from the device name)")
    p.add_argument("--no-reference", action="store_true",
                   help="skip timing the reference (it materialises B*H*F*N scores and sorts them)")
    p.add_argument("--out", default=None,
                   help="results folder (default: bench/results; a temp dir with --smoke)")
    p.add_argument("--smoke", action="store_true",
                   help="tiny shapes in under a minute (CPU: reference timed, kernel run once in the interpreter)")
    args = p.parse_args(argv)
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
    args.device = "cuda" if torch.cuda.is_available() else "cpu"
    args.dtype = getattr(torch, args.dtype or ("bfloat16" if args.device == "cuda" else "float32"))
    return args


def peak_bandwidth(name: str | None, override: float | None) -> tuple[float | None, str]:
    """(bytes/s, where it came from): kept out of the timed code on purpose."""
    if override:
        return override, "--peak-bw"
    for key, bw in PEAK_HBM_BYTES_PER_S:
        if name and key in name.lower():
            return bw, f"table entry {key!r}"
    return None, "unknown device: pass --peak-bw"


def make_inputs(B, H, N, args, seed=0):
    g = torch.Generator(device=args.device).manual_seed(seed)
    F, kw = args.fields, dict(device=args.device, dtype=args.dtype, generator=g)
    q = torch.randn(B, H, args.d_k, **kw)
    keys = torch.randn(F, N, args.d_k, **kw)
    values = torch.randn(F, N, args.d_v, **kw)
    return q, keys, values, torch.ones(F, dtype=torch.bool, device=args.device)


def traffic_and_flops(B, H, N, args) -> tuple[int, int]:
    """Compulsory bytes and FLOPs of one call (all fields enabled)."""
    R, F, k = B * H, args.fields, args.topk
    elt = torch.finfo(args.dtype).bits // 8
    moved = elt * (R * args.d_k + F * N * args.d_k + R * F * k * args.d_v + R * args.d_v) + F
    flops = 2 * R * F * (N * args.d_k + k * args.d_v)
    return moved, flops


def time_ms(fn, args) -> float:
    """do_bench on CUDA; a median of wall-clock runs elsewhere."""
    if args.device == "cuda":
        import triton.testing

        return triton.testing.do_bench(fn, warmup=args.warmup, rep=args.rep)
    fn()
    runs = []
    for _ in range(5):
        t = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t) * 1e3)
    return sorted(runs)[len(runs) // 2]


def bench_point(B, H, N, args, peak_bw, run_kernel: bool) -> dict:
    from lokiserve.kernels.kmm import kmm_decode_triton

    inputs = make_inputs(B, H, N, args)
    moved, flops = traffic_and_flops(B, H, N, args)
    row = {"B": B, "H": H, "N": N, "bytes": moved, "flops": flops}
    ref = None
    if not args.no_reference or run_kernel:
        try:
            ref = kmm_decode_reference(*inputs, args.topk)
            if not args.no_reference:
                row["reference_ms"] = time_ms(lambda: kmm_decode_reference(*inputs, args.topk), args)
        except torch.OutOfMemoryError:
            row["reference_ms"] = None
            torch.cuda.empty_cache()
    if run_kernel:
        out = kmm_decode_triton(*inputs, args.topk)
        if ref is not None:
            row["max_abs_err"] = (out.float() - ref.float()).abs().max().item()
        if args.device == "cuda":
            ms = time_ms(lambda: kmm_decode_triton(*inputs, args.topk), args)
            row.update(triton_ms=ms, gb_per_s=moved / ms / 1e6, tflop_per_s=flops / ms / 1e9)
            if peak_bw:
                row["hbm_roofline_fraction"] = moved / (ms * 1e-3) / peak_bw
            if row.get("reference_ms"):
                row["speedup_vs_reference"] = row["reference_ms"] / ms
    return row


def markdown(record: dict) -> str:
    cols = [("B", "B"), ("H", "H"), ("N", "N"), ("triton_ms", "triton ms"), ("reference_ms", "reference ms"),
            ("speedup_vs_reference", "speedup"), ("gb_per_s", "GB/s"), ("hbm_roofline_fraction", "of HBM peak"),
            ("tflop_per_s", "TFLOP/s"), ("max_abs_err", "max abs err")]
    lines = [
        f"Command: `{record['command']}`",
        "",
        f"Device: {record['device']} ({record['dtype']}); F={record['shape']['fields']}, "
        f"d_k={record['shape']['d_k']}, d_v={record['shape']['d_v']}, top-{record['shape']['topk']}; "
        f"HBM peak: {record['peak_hbm_bytes_per_s']} ({record['peak_source']}).",
        "",
        "| " + " | ".join(title for _, title in cols) + " |",
        "|" + "---|" * len(cols),
    ]
    for row in record["rows"]:
        cells = []
        for key, _ in cols:
            value = row.get(key)
            cells.append("-" if value is None else f"{value:.3g}" if isinstance(value, float) else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.device == "cpu" and not args.smoke:
        raise SystemExit("the full grid needs CUDA (interpreter timings mean nothing); use --smoke on CPU")
    name = common.cuda_name()
    peak_bw, peak_source = peak_bandwidth(name, args.peak_bw)
    rows = []
    for B in args.batch_sizes:
        for H in args.heads:
            for N in args.slots:
                # Under the interpreter one kernel run is the whole correctness check.
                run_kernel = args.device == "cuda" or not rows
                rows.append(bench_point(B, H, N, args, peak_bw, run_kernel))
                print(rows[-1], flush=True)
    record = {
        "command": common.command_line("bench/kmm_kernel.py"),
        "device": name or common.cpu_model(),
        "dtype": str(args.dtype).removeprefix("torch."),
        "shape": {"fields": args.fields, "d_k": args.d_k, "d_v": args.d_v, "topk": args.topk},
        "timer": "triton.testing.do_bench (ms)" if args.device == "cuda" else "median of 5 perf_counter runs (ms)",
        "peak_hbm_bytes_per_s": peak_bw,
        "peak_source": peak_source,
        "bytes_model": "q + all keys once + selected value rows + out + enabled",
        "note": None if args.device == "cuda" else
        "CPU smoke: reference timed; kernel run once under TRITON_INTERPRET=1 for max_abs_err only",
        "machine": common.machine_info(),
        "rows": rows,
    }
    out = common.out_dir(args.out, args.smoke)
    js, md = common.write_results(out, f"kmm_kernel-{common.device_label()}", record, markdown(record))
    print(f"wrote {js} and {md}")
    errors = [r["max_abs_err"] for r in rows if "max_abs_err" in r]
    tol = 1e-4 if args.dtype == torch.float32 else 5e-2
    if any(not math.isfinite(e) or e > tol for e in errors):
        print(f"kernel disagrees with the reference: max_abs_err {max(errors)} > {tol}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
