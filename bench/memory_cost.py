"""What a memory of a given size costs: the throughput ratio against the plain
model at several slot counts, every field live (random contents).

One ``bench/throughput.py`` run per slot count (``--slots N --live-fields F``,
batch 32 by default), each paired against the same baseline in the same run;
this script then tabulates them with the memory's share of the multiply-adds
into ``bench/results/<tag>.md`` / ``.json``. ``--collect`` only tabulates
results that are already there.

    python bench/memory_cost.py --model smollm2-135m
    python bench/memory_cost.py --model DIR --baseline LLAMA_DIR --slots 1024,4096,16384,65536
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

SCRIPT = "bench/memory_cost.py"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default="smollm2-135m", help=common.MODEL_HELP)
    p.add_argument("--baseline", help="Llama directory to compare against (see bench/throughput.py)")
    p.add_argument("--slots", default="1024,4096,16384,65536", help="comma-separated slots per field")
    p.add_argument("--live-fields", type=int, default=4, help="fields filled with random, enabled contents")
    p.add_argument("--batch-sizes", default="32", help="passed to bench/throughput.py")
    p.add_argument("--rounds", type=int, default=1, help="passed to bench/throughput.py")
    p.add_argument("--repeats", type=int, default=2, help="passed to bench/throughput.py")
    p.add_argument("--tag", default="cpu-smollm2", help="result names: <tag>-slots<N> per point, <tag>-memory-cost")
    p.add_argument("--collect", action="store_true", help="only tabulate the per-point results already written")
    p.add_argument("--out", help="directory for the result files (default: bench/results; with --smoke a temp dir)")
    p.add_argument("--smoke", action="store_true", help="the tests' tiny random checkpoint at 16 and 32 slots, tiny "
                   "sizes (bench/throughput.py --smoke), results to a temp dir unless --out")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.smoke:
        args.model, args.slots, args.live_fields, args.tag = "tiny", "16,32", 2, "smoke"
    out = common.out_dir(args.out, args.smoke)
    slots = [int(x) for x in args.slots.split(",")]
    for n in slots if not args.collect else []:
        cmd = [sys.executable, "bench/throughput.py", "--model", args.model, "--slots", str(n), "--live-fields",
               str(args.live_fields), "--rounds", str(args.rounds), "--repeats", str(args.repeats),
               "--tag", f"{args.tag}-slots{n}", "--no-plot", "--out", str(out)]
        cmd += ["--smoke"] if args.smoke else ["--batch-sizes", args.batch_sizes]
        if args.baseline:
            cmd += ["--baseline", args.baseline]
        subprocess.run(cmd, check=True, cwd=common.REPO)
    rows = []
    for n in slots:
        path = out / f"throughput-{args.tag}-slots{n}.json"
        if not path.exists():
            continue
        r = json.loads(path.read_text())
        mem = r["model"]["memory"]
        b = max(r["results"], key=int)
        rows.append({"slots_per_field": n, "live_fields": mem["live_fields"], "kmm_layers": mem["kmm_layers"],
                     "memory_macs_share": mem["macs_per_token"]["memory_share"], "batch": int(b),
                     "paired_ratio": r["results"][b]["ratio_output_paired_median"],
                     "load_average_at_start": r["machine"]["load_average_at_start"], "command": r["command"]})
    lines = [f"# Memory cost curve ({args.tag})", "",
             "Throughput ratio LoKiFormer / plain model (paired, output tok/s) with every field live; one "
             "`bench/throughput.py` run per row, each against the same baseline in the same run.", "",
             "| slots per field | live fields x KMM layers | memory share of multiply-adds | batch | paired ratio |",
             "|---:|---|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['slots_per_field']:,} | {row['live_fields']} x {row['kmm_layers']} | "
                     f"{100 * row['memory_macs_share']:.1f} % | {row['batch']} | {row['paired_ratio']:.3f} |")
    lines += ["", f"Command: `{common.command_line(SCRIPT)}`; per point: `throughput-{args.tag}-slots<N>.md` beside this file", ""]
    js, md = common.write_results(out, f"throughput-{args.tag}-memory-cost",
                                  {"benchmark": "memory_cost", "command": common.command_line(SCRIPT), "rows": rows},
                                  "\n".join(lines))
    print(md.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
