"""What does the memory cost on a CPU, and how much does the CPU path save?

Times, in one process, ``kmm_decode_reference`` (the oracle) against
``kmm_decode_cpu`` (what vLLM's CPU path and ``kmm_decode`` use on CPU
tensors), both with its native scan (``cpu_scan.c``, the default wherever a C
compiler exists) and with its pure PyTorch fallback, at the demo model's memory geometry: 4 heads, 5 fields of 256
slots with 4 enabled (the reserve ships empty), d_k = d_v = 64, top-4.
Rows are queries per call: decode batches (1, 8, 32 tokens) and prefill
chunks (512, 2048 tokens). Both run on the same inputs, interleaved,
median of ``--repeats``; the outputs are compared (max |error|).

    python bench/kmm_cpu.py            # writes bench/results/kmm_cpu-cpu.{json,md}
    python bench/kmm_cpu.py --smoke    # tiny, seconds, temp dir
"""

from __future__ import annotations

import argparse
import os
import time

import torch

import common  # noqa: F401  (puts the repository root on sys.path)

from lokiserve.kernels.kmm import kmm_decode_cpu, kmm_decode_reference, native  # noqa: E402

SCRIPT = "bench/kmm_cpu.py"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", type=int, nargs="+", default=[1, 8, 32, 512, 2048], help="queries (tokens) per call")
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--fields", type=int, default=5, help="fields; the last one is disabled, like the demo's reserve")
    p.add_argument("--slots", type=int, default=256)
    p.add_argument("--d-k", type=int, default=64)
    p.add_argument("--d-v", type=int, default=64)
    p.add_argument("--topk", type=int, default=4)
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: stable on a shared machine)")
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--out", help="directory for the result files (default: bench/results; with --smoke a temp dir)")
    p.add_argument("--tag", default="cpu", help="result file suffix")
    p.add_argument("--smoke", action="store_true", help="tokens 1,64, 3 repeats, temp dir")
    args = p.parse_args(argv)
    if args.smoke:
        args.tokens, args.repeats = [1, 64], 3
    if min(args.tokens) < 1 or args.repeats < 1 or args.fields < 1 or not 1 <= args.topk <= args.slots:
        p.error("--tokens, --repeats, --fields must be positive and 1 <= --topk <= --slots")
    args.dtype = getattr(torch, args.dtype)
    return args


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1e3


def bench_row(T: int, args) -> dict:
    g = torch.Generator().manual_seed(T)
    q = torch.randn(T, args.heads, args.d_k, generator=g).to(args.dtype)
    keys = torch.randn(args.fields, args.slots, args.d_k, generator=g).to(args.dtype)
    values = torch.randn(args.fields, args.slots, args.d_v, generator=g).to(args.dtype)
    enabled = torch.ones(args.fields, dtype=torch.bool)
    enabled[-1] = args.fields == 1
    call = {
        "reference": lambda: kmm_decode_reference(q, keys, values, enabled, args.topk),
        "cpu": lambda: kmm_decode_cpu(q, keys, values, enabled, args.topk),
        "cpu_pytorch": lambda: with_native(False, lambda: kmm_decode_cpu(q, keys, values, enabled, args.topk)),
    }
    want = call["reference"]().float()
    err = (call["cpu"]().float() - want).abs().max().item()
    err_pt = (call["cpu_pytorch"]().float() - want).abs().max().item()
    runs = {k: [] for k in call}
    for _ in range(args.repeats):  # interleaved, so drifts of a shared machine hit all alike
        for k, fn in call.items():
            runs[k].append(timed(fn))
    ms = {k: common.median(v) for k, v in runs.items()}
    return {"tokens": T, "reference_ms": ms["reference"], "cpu_ms": ms["cpu"], "cpu_pytorch_ms": ms["cpu_pytorch"],
            "speedup": ms["reference"] / ms["cpu"], "speedup_pytorch": ms["reference"] / ms["cpu_pytorch"],
            "max_abs_err": max(err, err_pt)}


def with_native(flag: bool, fn):
    """Run ``fn`` with the native scan switched on or off (``LOKISERVE_KMM_NATIVE``)."""
    before = os.environ.get("LOKISERVE_KMM_NATIVE")
    os.environ["LOKISERVE_KMM_NATIVE"] = "1" if flag else "0"
    try:
        return fn()
    finally:
        if before is None:
            os.environ.pop("LOKISERVE_KMM_NATIVE", None)
        else:
            os.environ["LOKISERVE_KMM_NATIVE"] = before


def markdown(record: dict) -> str:
    s = record["shape"]
    lines = [
        "# KMM retrieval on CPU: reference vs the CPU path",
        "",
        f"Command: `{record['command']}`",
        "",
        f"Geometry: {s['heads']} heads, {s['fields']} fields ({s['fields'] - 1 if s['fields'] > 1 else 1} enabled) x "
        f"{s['slots']} slots, d_k={s['d_k']}, d_v={s['d_v']}, top-{s['topk']}, {record['dtype']}, "
        f"{record['threads']} thread(s); median of {record['repeats']} interleaved calls.",
        "",
        f"CPU path: {'native scan (cpu_scan.c) after the score matmul' if record['native'] else 'native scan unavailable here: PyTorch fallback in both CPU columns'}; "
        "the PyTorch column is the same path with the native scan off (its fallback).",
        "",
        "| tokens per call | reference ms | CPU path ms | speedup | CPU path, PyTorch fallback ms | speedup | max abs err |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in record["rows"]:
        lines.append(f"| {r['tokens']} | {r['reference_ms']:.3f} | {r['cpu_ms']:.3f} | {r['speedup']:.2f}x | "
                     f"{r['cpu_pytorch_ms']:.3f} | {r['speedup_pytorch']:.2f}x | {r['max_abs_err']:.1e} |")
    m = record["machine"]
    lines += ["", f"Machine: {m['cpu_model']}, {m['cpu_cores_usable']} usable cores, load average at start "
                  f"{m['load_average_at_start']}."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    machine = common.machine_info()
    rows = []
    for T in args.tokens:
        rows.append(bench_row(T, args))
        r = rows[-1]
        print(f"tokens {T:5d}: reference {r['reference_ms']:.3f} ms, cpu {r['cpu_ms']:.3f} ms "
              f"({r['speedup']:.2f}x), pytorch fallback {r['cpu_pytorch_ms']:.3f} ms ({r['speedup_pytorch']:.2f}x), "
              f"max err {r['max_abs_err']:.1e}", flush=True)
    record = {
        "benchmark": "kmm_cpu", "command": common.command_line(SCRIPT), "smoke": args.smoke,
        "dtype": str(args.dtype).replace("torch.", ""), "threads": args.threads, "repeats": args.repeats,
        "native": native.scan_library() is not None,
        "shape": {"heads": args.heads, "fields": args.fields, "slots": args.slots, "d_k": args.d_k,
                  "d_v": args.d_v, "topk": args.topk},
        "machine": machine, "rows": rows,
    }
    out = common.out_dir(args.out, args.smoke)
    paths = common.write_results(out, f"kmm_cpu-{args.tag}", record, markdown(record))
    print(f"wrote {paths[0]} and {paths[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
