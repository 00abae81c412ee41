"""Completion latency while memory fields are hot-swapped, against `lokiserve serve`.

Two phases of the same open-loop load — requests are sent on a fixed
schedule (``--arrivals fixed``, every ``1/--rate`` s, or ``poisson``) whether
or not earlier ones have finished, for ``--duration`` seconds:

1. *baseline*: no swaps;
2. *swaps*: the same load while one field is swapped every
   ``--swap-interval`` seconds, alternating ``POST /memory/fields/{id}/zero``
   and ``PUT /memory/fields/{id}`` with the field's original file bytes
   (exported once with ``GET /memory/fields/{id}/file`` before the run); each
   swap's duration is timed from request to its 200. The field is restored at
   the end.

Reported per phase: requests sent / ok / failed (must be 0), p50/p90/p99/max
end-to-end latency, requests/s and output tokens/s; the p50 and p99 rise of
the swap phase over the baseline in %, and the swap duration distribution
(p50/p99/max). Targets: p99 rise <= 10 %, swap <= 500 ms (demo field, CPU).
Results: ``bench/results/swap_under_load-<device>.json`` and ``.md``
including the exact command; ``--smoke`` writes to a temp dir (or ``--out``).

Against a running server (loopback only)::

    python bench/swap_under_load.py --url http://127.0.0.1:8000 --admin-url http://127.0.0.1:8001 \\
        --token "$(cat .lokiserve/demo/admin-token)"

Or let the script start and stop one (demo model if trained, else the tests'
tiny random checkpoint; ``--model DIR`` to choose)::

    python bench/swap_under_load.py --launch
    python bench/swap_under_load.py --launch --smoke

``--launch`` runs ``python -m lokiserve.cli serve MODEL --port P --admin-port A
--state-dir TMP --dtype float32 --max-model-len 512 --enforce-eager`` (512 or
the model's max_position_embeddings if smaller) with a
random ``LOKISERVE_ADMIN_TOKEN`` (``--serve-arg`` adds vLLM flags, e.g.
``--serve-arg=--dtype=bfloat16`` on a GPU, where later flags win).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

SCRIPT = "bench/swap_under_load.py"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Latency of an open-loop completion stream with and without field hot swaps.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--url", default="http://127.0.0.1:8000", help="OpenAI API base URL of a running lokiserve (ignored with --launch)")
    p.add_argument("--admin-url", default="http://127.0.0.1:8001", help="memory admin API base URL (ignored with --launch)")
    p.add_argument("--token", default=os.environ.get("LOKISERVE_ADMIN_TOKEN"), help="admin bearer token (default: $LOKISERVE_ADMIN_TOKEN; generated with --launch)")
    p.add_argument("--launch", action="store_true", help="start `lokiserve serve` on free loopback ports for the run and stop it at the end")
    p.add_argument("--model", help="with --launch: " + common.MODEL_HELP)
    p.add_argument("--serve-arg", action="append", default=[], help="with --launch: extra flag for `lokiserve serve`/vLLM, repeatable (e.g. --serve-arg=--dtype=bfloat16)")
    p.add_argument("--startup-timeout", type=float, default=600.0, help="with --launch: seconds to wait for the server to answer")
    p.add_argument("--kv-cache-gib", type=float, default=1.0, help="with --launch on CPU: VLLM_CPU_KVCACHE_SPACE in GiB unless set in the environment")
    p.add_argument("--field", help="field to swap, name or index (default: the first active field)")
    p.add_argument("--rate", type=float, default=4.0, help="requests per second sent (open loop)")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of sending per phase")
    p.add_argument("--arrivals", choices=("fixed", "poisson"), default="fixed", help="inter-arrival times: fixed 1/rate, or exponential (seeded)")
    p.add_argument("--swap-interval", type=float, default=2.0, help="seconds between swaps in the swap phase")
    p.add_argument("--prompt-len", type=int, default=32, help="prompt length in tokens (random token ids, distinct per request)")
    p.add_argument("--max-tokens", type=int, default=16, help="tokens generated per request (ignore_eos=True)")
    p.add_argument("--token-id-limit", type=int, default=256, help="prompt token ids are drawn from [2, this) (must be within the vocabulary)")
    p.add_argument("--warmup-requests", type=int, default=8, help="requests sent (closed loop, 2 at a time) before the baseline phase, not measured")
    p.add_argument("--max-requests", type=int, default=2000, help="hard cap on requests per phase")
    p.add_argument("--request-timeout", type=float, default=120.0, help="seconds before a request counts as failed")
    p.add_argument("--seed", type=int, default=0, help="seed for prompts and Poisson arrivals")
    p.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --url/--admin-url (off: this is a load generator)")
    p.add_argument("--out", help="directory for the result files (default: bench/results; with --smoke a temp dir)")
    p.add_argument("--tag", help="result file suffix (default: the device of this machine: cpu or the GPU name)")
    p.add_argument("--smoke", action="store_true", help="implies --launch unless --token is given; tiny random checkpoint, 5 s phases at 2 req/s, a swap every second, 8 tokens; results to a temp dir unless --out")
    args = p.parse_args(argv)
    if args.smoke and not args.token:
        args.launch = True  # a smoke run needs no server of its own
    if args.smoke:
        args.duration, args.rate, args.swap_interval, args.max_tokens, args.prompt_len = 5.0, 2.0, 1.0, 8, 16
        args.warmup_requests = min(args.warmup_requests, 2)
    if args.rate <= 0 or args.duration <= 0 or args.swap_interval <= 0:
        p.error("--rate, --duration and --swap-interval must be positive")
    if not args.launch:
        if not args.token:
            p.error("--token (or $LOKISERVE_ADMIN_TOKEN) is needed against a running server")
        for url in (args.url, args.admin_url):
            if not args.allow_remote and not is_loopback(url):
                p.error(f"{url} is not a loopback address (pass --allow-remote to load a remote server)")
    return args


def is_loopback(url: str) -> bool:
    from lokiserve.server.settings import is_loopback_host

    return is_loopback_host(urlparse(url).hostname or "")


# --------------------------------------------------------------------------- load


class Phase:
    def __init__(self, name: str):
        self.name = name
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.output_tokens = 0
        self.sent = 0
        self.start = self.end = 0.0

    def summary(self) -> dict:
        lat = self.latencies
        wall = max(self.end - self.start, 1e-9)
        return {
            "sent": self.sent,
            "ok": len(lat),
            "failed": len(self.errors),
            "errors": self.errors[:10],
            "latency_s": {
                "p50": common.percentile(lat, 50), "p90": common.percentile(lat, 90),
                "p99": common.percentile(lat, 99), "max": max(lat) if lat else None,
                "mean": sum(lat) / len(lat) if lat else None,
            },
            "wall_seconds": wall,
            "requests_per_s": len(lat) / wall,
            "output_tok_per_s": self.output_tokens / wall,
        }


async def one_request(client, args, model: str, prompt: list[int], phase: Phase | None) -> None:
    body = {"model": model, "prompt": prompt, "max_tokens": args.max_tokens, "temperature": 0, "ignore_eos": True}
    t = time.perf_counter()
    try:
        r = await client.post("/v1/completions", json=body, timeout=args.request_timeout)
        dt = time.perf_counter() - t
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")
        data = r.json()
        n = data["usage"]["completion_tokens"]
        if n != args.max_tokens:
            raise RuntimeError(f"{n} tokens instead of {args.max_tokens}")
    except Exception as exc:  # noqa: BLE001 - every failure counts, whatever it is
        if phase is not None:
            phase.errors.append(f"{type(exc).__name__}: {exc}"[:300])
        return
    if phase is not None:
        phase.latencies.append(dt)
        phase.output_tokens += n
        phase.end = max(phase.end, time.perf_counter())


def arrival_times(args, rng: random.Random) -> list[float]:
    n_max = min(args.max_requests, int(args.rate * args.duration * 3) + 1)
    times, t = [], 0.0
    while len(times) < n_max and t < args.duration:
        times.append(t)
        t += rng.expovariate(args.rate) if args.arrivals == "poisson" else 1.0 / args.rate
    return times


async def run_phase(name: str, client, args, model: str, rng: random.Random, swapper=None) -> tuple[Phase, list]:
    phase = Phase(name)
    times = arrival_times(args, rng)
    prompts = [[rng.randrange(2, args.token_id_limit) for _ in range(args.prompt_len)] for _ in times]
    tasks = []
    phase.start = phase.end = time.perf_counter()
    swap_task = asyncio.create_task(swapper(phase.start)) if swapper else None
    for t_rel, prompt in zip(times, prompts):
        delay = phase.start + t_rel - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one_request(client, args, model, prompt, phase)))
        phase.sent += 1
    swaps = await swap_task if swap_task else []
    await asyncio.gather(*tasks)
    return phase, swaps


async def swap_once(admin, field: str, op: str, original: bytes) -> dict:
    t = time.perf_counter()
    try:
        if op == "zero":
            r = await admin.post(f"/memory/fields/{field}/zero")
        else:
            r = await admin.put(f"/memory/fields/{field}", content=original, headers={"Content-Type": "application/octet-stream"})
        ok, status, detail = r.status_code == 200, r.status_code, (r.json().get("version") if r.status_code == 200 else r.text[:200])
    except Exception as exc:  # noqa: BLE001
        ok, status, detail = False, None, f"{type(exc).__name__}: {exc}"[:200]
    return {"op": op, "ok": ok, "status": status, "seconds": time.perf_counter() - t, "detail": detail}


def make_swapper(admin, args, field: str, original: bytes, state: dict):
    async def swapper(start: float) -> list[dict]:
        swaps, k = [], 1
        while True:
            at = start + k * args.swap_interval
            if at - start >= args.duration:
                return swaps
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            op = "zero" if state["active"] else "put"
            rec = await swap_once(admin, field, op, original)
            rec["at_s"] = at - start
            if rec["ok"]:
                state["active"] = op == "put"
            swaps.append(rec)
            k += 1

    return swapper


async def bench(args, api_url: str, admin_url: str, token: str) -> dict:
    import httpx

    rng = random.Random(args.seed)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=api_url, limits=limits, timeout=args.request_timeout) as client, \
            httpx.AsyncClient(base_url=admin_url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as admin:
        model = (await client.get("/v1/models")).raise_for_status().json()["data"][0]["id"]
        fields = (await admin.get("/memory/fields")).raise_for_status().json()["fields"]
        if args.field is not None:
            field = next((f for f in fields if args.field in (f["name"], str(f["id"]))), None)
            if field is None:
                raise SystemExit(f"--field {args.field}: not one of {[f['name'] for f in fields]}")
        else:
            field = next((f for f in fields if f["state"] == "active"), None)
            if field is None:
                raise SystemExit("no active field to swap; pass --field")
        name = field["name"]
        exported = await admin.get(f"/memory/fields/{name}/file")
        exported.raise_for_status()
        original = exported.content
        state = {"active": field["state"] == "active"}
        print(f"swap_under_load: model {model}, field {name!r} ({len(original):,} bytes), "
              f"{args.rate:g} req/s for {args.duration:g} s per phase, swap every {args.swap_interval:g} s", flush=True)

        warm = [[rng.randrange(2, args.token_id_limit) for _ in range(args.prompt_len)] for _ in range(args.warmup_requests)]
        for i in range(0, len(warm), 2):
            await asyncio.gather(*(one_request(client, args, model, p, None) for p in warm[i:i + 2]))
        # One unmeasured zero/put pair so first-swap costs do not count.
        for op in ("zero", "put") if state["active"] else ("put", "zero"):
            rec = await swap_once(admin, name, op, original)
            if not rec["ok"]:
                raise SystemExit(f"warm-up swap {op} failed: {rec}")

        base, _ = await run_phase("baseline", client, args, model, rng)
        print(f"  baseline: {len(base.latencies)} ok, {len(base.errors)} failed", flush=True)
        swapped, swaps = await run_phase("swaps", client, args, model, rng,
                                         make_swapper(admin, args, name, original, state))
        print(f"  swaps:    {len(swapped.latencies)} ok, {len(swapped.errors)} failed, {len(swaps)} swaps", flush=True)
        restored = None
        if not state["active"] and field["state"] == "active":
            restored = await swap_once(admin, name, "put", original)
        final = (await admin.get(f"/memory/fields/{name}")).json()

    b, s = base.summary(), swapped.summary()
    durations = [x["seconds"] for x in swaps if x["ok"]]

    def rise(key: str):
        lo, hi = b["latency_s"][key], s["latency_s"][key]
        return None if not lo or hi is None else (hi / lo - 1.0) * 100.0

    swap_stats = {
        "count": len(swaps),
        "ok": len(durations),
        "failed": len(swaps) - len(durations),
        "by_op": {op: len([x for x in swaps if x["op"] == op]) for op in ("zero", "put")},
        "seconds": {"p50": common.percentile(durations, 50), "p99": common.percentile(durations, 99),
                    "max": max(durations) if durations else None, "mean": sum(durations) / len(durations) if durations else None},
        "all": swaps,
        "restore_after_run": restored,
    }
    p99_rise = rise("p99")
    swap_max = swap_stats["seconds"]["max"]
    return {
        "model_name": model,
        "field": {"name": name, "bytes": len(original), "sha256": field["sha256"], "final_state": final.get("state"),
                  "final_sha256_matches": final.get("sha256") == field["sha256"]},
        "phases": {"baseline": b, "swaps": s},
        "failed_requests": b["failed"] + s["failed"],
        "p50_rise_pct": rise("p50"),
        "p99_rise_pct": p99_rise,
        "swaps": swap_stats,
        "targets": {
            "failed_requests": {"max": 0, "met": b["failed"] + s["failed"] == 0},
            "p99_rise_pct": {"max": 10.0, "value": p99_rise, "met": None if p99_rise is None else p99_rise <= 10.0},
            "swap_seconds_max": {"max": 0.5, "value": swap_max, "met": None if swap_max is None else swap_max <= 0.5},
        },
    }


# --------------------------------------------------------------------------- server


@contextmanager
def launch(args, scratch: Path):
    """`lokiserve serve` on free loopback ports (``common.served``), with the model this run chose."""
    model, chosen = common.resolve_model(args.model, scratch, prefer_tiny=args.smoke)
    vocab, _ = common.model_limits(model)
    args.token_id_limit = min(args.token_id_limit, vocab)
    kv = os.environ.get("VLLM_CPU_KVCACHE_SPACE", f"{args.kv_cache_gib:g}")
    with common.served(model, scratch, extra=args.serve_arg, kv_cache_gib=kv, timeout=args.startup_timeout) as srv:
        yield {**srv, "model": model, "chosen": chosen}


def markdown(result: dict) -> str:
    b, s = result["phases"]["baseline"], result["phases"]["swaps"]
    sw = result["swaps"]
    a = result["settings"]
    m = result["machine"]
    ms = lambda x: common.fmt(None if x is None else x * 1000.0, 0)  # noqa: E731
    pct = lambda x: "n/a" if x is None else f"{x:+.1f} %"  # noqa: E731
    t = result["targets"]
    met = lambda d: "n/a" if d["met"] is None else ("met" if d["met"] else "NOT met")  # noqa: E731
    lines = [
        f"# Completion latency under field hot swaps ({result['device']})",
        "",
        f"Command: `{result['command']}`",
        "",
        f"Server: {result['server']['how']}; model `{result['server']['model']}`. Field `{result['field']['name']}` "
        f"({result['field']['bytes']:,} bytes) swapped every {a['swap_interval']:g} s (alternating zero / PUT of the original file). "
        f"Load: {a['arrivals']} arrivals at {a['rate']:g} req/s for {a['duration']:g} s per phase, prompt {a['prompt_len']} tokens, "
        f"{a['max_tokens']} output tokens (greedy, ignore_eos).",
        "",
        "| phase | sent | ok | failed | p50 ms | p90 ms | p99 ms | max ms | req/s | out tok/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, ph in (("baseline (no swaps)", b), (f"swaps ({sw['count']})", s)):
        lat = ph["latency_s"]
        lines.append(f"| {name} | {ph['sent']} | {ph['ok']} | {ph['failed']} | {ms(lat['p50'])} | {ms(lat['p90'])} | "
                     f"{ms(lat['p99'])} | {ms(lat['max'])} | {ph['requests_per_s']:.2f} | {ph['output_tok_per_s']:.1f} |")
    lines += [
        "",
        f"p50 rise {pct(result['p50_rise_pct'])}, **p99 rise {pct(result['p99_rise_pct'])}** (target <= +10 %: {met(t['p99_rise_pct'])}). "
        f"Failed requests: {result['failed_requests']} (target 0: {met(t['failed_requests'])}).",
        "",
        f"Swap duration (request -> 200, {sw['ok']} ok / {sw['failed']} failed; {sw['by_op']['zero']} zero, {sw['by_op']['put']} put): "
        f"p50 {ms(sw['seconds']['p50'])} ms, p99 {ms(sw['seconds']['p99'])} ms, max {ms(sw['seconds']['max'])} ms "
        f"(target <= 500 ms: {met(t['swap_seconds_max'])}). Field after the run: {result['field']['final_state']}, "
        f"checksum {'restored' if result['field']['final_sha256_matches'] else 'DIFFERENT from the start'}.",
        "",
        f"Machine: {m['cpu_model']}, {m['cpu_cores_usable']} usable cores of {m['cpu_cores']}" + (f", GPU {m['gpu']}" if m["gpu"] else "")
        + f", load average at start {m['load_average_at_start']} (shared machine; both phases run back to back in one server).",
        f"Versions: {', '.join(f'{k} {v}' for k, v in m['versions'].items())}; python {m['python']}; commit {m['git_commit']}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    machine = common.machine_info()
    scratch = Path(tempfile.mkdtemp(prefix="lokiserve-swapbench-"))
    try:
        out = common.out_dir(args.out, args.smoke)
        if args.launch:
            with launch(args, scratch) as srv:
                print(f"server up in {srv['startup_seconds']:.1f} s", flush=True)
                result = asyncio.run(bench(args, srv["api"], srv["admin"], srv["token"]))
                server = {"how": f"launched by the script ({srv['chosen']}), up in {srv['startup_seconds']:.1f} s",
                          "model": str(srv["model"]), "command": [str(c) for c in srv["command"]]}
        else:
            result = asyncio.run(bench(args, args.url.rstrip("/"), args.admin_url.rstrip("/"), args.token))
            server = {"how": f"running server at {args.url} (admin {args.admin_url})", "model": result["model_name"]}
        device = args.tag or common.device_label()
        result = {
            "benchmark": "swap_under_load",
            "device": device,
            "command": common.command_line(SCRIPT),
            "smoke": args.smoke,
            "server": server,
            "settings": {k: v for k, v in vars(args).items() if k not in ("token", "out", "tag")},
            "machine": machine,
            **result,
        }
        js, md = common.write_results(out, f"swap_under_load-{device}", result, markdown(result))
        print(md.read_text())
        print(f"wrote {js} and {md}")
        return 0 if result["failed_requests"] == 0 and result["swaps"]["failed"] == 0 else 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
