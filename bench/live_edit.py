"""Live edits through the admin API: the time from ``POST /memory/fields/{id}/facts``
to the field being served, and what the served model then answers.

Starts ``lokiserve serve`` on free loopback ports, then for each size N:
POSTs N facts, times the request (the response comes once the field is
written, verified and swapped in), asks the served model through the
official ``openai`` client (greedy) for each fact's prompt and for a
paraphrase the writer never saw, and puts the original field back (PUT of
its exported file) before the next size.

    python bench/live_edit.py                                   # the demo, 1 and 100 facts
    python bench/live_edit.py --model smollm2-135m --sizes 1 10  # the converted SmolLM2-135M
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common  # noqa: E402

from edit_facts import geography_swaps  # noqa: E402

from lokiserve.edit.facts import continuation  # noqa: E402

SCRIPT = "bench/live_edit.py"
REAL_SET = common.REPO / "memories" / "smollm2-counterfact" / "facts.jsonl"


def real_facts(n: int) -> tuple[list[dict], list[tuple[str, str]]]:
    """The first n rows of the real-world set, the writer given the first
    paraphrase; (held-out paraphrase, answer) pairs."""
    rows = [json.loads(line) for line in REAL_SET.read_text().splitlines() if line.strip()][:n]
    facts = [{"prompt": r["prompt"], "subject": r["subject"], "answer": r["answer"], "paraphrases": r["paraphrases"][:1],
              "neighbors": r["neighbors"]} for r in rows]
    return facts, [(r["paraphrases"][-1], r["answer"]) for r in rows]


def served_hits(client, model: str, pairs: list[tuple[str, str]]) -> float | None:
    """Share of prompts whose greedy completion is the answer (then not a longer word)."""
    if not pairs:
        return None
    hits = 0
    out = client.completions.create(model=model, prompt=[p for p, _ in pairs], max_tokens=12, temperature=0.0)
    for choice in sorted(out.choices, key=lambda c: c.index):
        prompt, answer = pairs[choice.index]
        want = continuation(prompt, answer)
        text = choice.text
        hits += text.startswith(want) and not text[len(want):][:1].isalnum()
    return round(hits / len(pairs), 4)


def run(args) -> dict:
    from openai import OpenAI

    scratch = Path(tempfile.mkdtemp(prefix="lokiserve-live-edit-"))
    model_dir, chosen = common.resolve_model(args.model, scratch)
    world_file = Path(model_dir) / "world.jsonl"  # a demo-style model: its own facts; else a converted one
    real = not world_file.exists()
    world = [] if real else [json.loads(line) for line in world_file.read_text().splitlines() if line.strip()]
    field = args.field or ("general" if real else "geography")
    rows = []
    kv = os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")
    with common.served(model_dir, scratch, extra=["--max-field-bytes", str(256 << 20)], kv_cache_gib=kv,
                       timeout=600) as srv:
        api, admin, token = srv["api"], srv["admin"], srv["token"]
        headers = {"Authorization": f"Bearer {token}"}
        ad = httpx.Client(base_url=admin, headers=headers, timeout=None)
        client = OpenAI(base_url=f"{api}/v1", api_key="unused", timeout=600)
        served = client.models.list().data[0].id
        original = ad.get(f"/memory/fields/{field}/file").content
        for n in args.sizes:
            facts, held = real_facts(n) if real else (geography_swaps(world, n, args.seed), [])
            t0 = time.perf_counter()
            r = ad.post(f"/memory/fields/{field}/facts", json=facts)
            seconds = time.perf_counter() - t0
            body = r.json()
            report = body.get("report") or {}
            row = {"facts": len(facts), "status": r.status_code, "request_to_applied_s": round(seconds, 1),
                   "server_seconds": body.get("seconds"),
                   **{k: report.get(k) for k in ("efficacy", "paraphrase_given", "neighbors", "retain",
                                                  "unrelated_top1", "passed")}}
            if r.status_code == 200:
                row["served_prompts"] = served_hits(client, served, [(f["prompt"], f["answer"]) for f in facts])
                row["served_held_out_paraphrases"] = served_hits(client, served, held)
            else:
                row["error"] = body.get("error")
            print(json.dumps(row), flush=True)
            rows.append(row)
            put = ad.put(f"/memory/fields/{field}", content=original,
                         headers={"Content-Type": "application/octet-stream"})
            assert put.status_code == 200, put.text
    return {"benchmark": "live_edit", "command": common.command_line(SCRIPT), "model": chosen, "field": field,
            "results": rows, "machine": common.machine_info()}


def markdown(data: dict) -> str:
    lines = [f"# Live edits through the admin API ({data['model']})", "", f"Command: `{data['command']}`", "",
             f"`POST /memory/fields/{data['field']}/facts` against `lokiserve serve` (float32, CPU); the response "
             "comes once the field is written, verified and swapped in. Served answers: greedy completions through "
             "the `openai` client after the swap.", "",
             "| facts | status | request to applied (s) | efficacy | paraphrase (given) | neighbours | retain | "
             "unrelated top-1 | served: prompts | served: held-out paraphrases |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in data["results"]:
        lines.append(f"| {r['facts']} | {r['status']} | {r['request_to_applied_s']} | {r['efficacy']} | "
                     f"{r['paraphrase_given']} | {r['neighbors']} | {r['retain']} | {r['unrelated_top1']} | "
                     f"{r.get('served_prompts')} | {r.get('served_held_out_paraphrases')} |")
    m = data["machine"]
    lines += ["", f"Machine: {m.get('cpu_model')}, {m.get('cpu_cores_usable')} usable cores, load average at start {m.get('load_average_at_start')}; commit {m.get('git_commit')}.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default=None, help=common.MODEL_HELP + " (default: the shipped demo)")
    p.add_argument("--field", default=None, help="field to write (default: geography on the demo, general else)")
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 100])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tag", default=None, help="result name: live_edit-<tag> (default: the model's name)")
    p.add_argument("--out", default=None, help="directory for the result files (default: bench/results)")
    args = p.parse_args(argv)
    if any(n < 1 for n in args.sizes):
        p.error("--sizes must be positive")
    data = run(args)
    out = common.out_dir(args.out, False)
    common.write_results(out, f"live_edit-{args.tag or data['model']}", data, markdown(data))
    print(markdown(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
