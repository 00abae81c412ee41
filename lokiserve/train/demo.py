"""Shipping the demo: the edited and new-domain field files beside the model,
and the recorded evaluation in ``bench/results`` (what ``train-demo`` ends with)."""

from __future__ import annotations

import json
from pathlib import Path

from lokiserve.train.evaluate import ablation_markdown, ablation_png, run_eval
from lokiserve.train.field_training import train_field
from lokiserve.train.world import NEW_DOMAIN, RESERVE_FIELD, edit_domain as make_edit, read_facts, write_facts


def write_json(path: str | Path, data: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def build_shipped_fields(out: Path, world, steps: int, seed: int, threads: int, edit_domain: str,
                         progress: bool = True, new_steps: int | None = None, lr: float = 1e-2) -> dict:
    """memories/demo/edits/<domain>.{jsonl,safetensors} and new/<domain>.{jsonl,safetensors}."""
    out = Path(out)
    edit_facts = write_facts(make_edit(world, edit_domain, 0.5, seed), out / "edits" / f"{edit_domain}.jsonl")
    _, edit_info = train_field(out, read_facts(edit_facts), edit_domain, out / "edits" / f"{edit_domain}.safetensors",
                               steps=steps, lr=lr, seed=seed, threads=threads, progress=progress,
                               description=f"{edit_domain} with half of its answers changed")
    new_facts = write_facts(world.new_facts, out / "new" / f"{NEW_DOMAIN}.jsonl")
    _, new_info = train_field(out, read_facts(new_facts), RESERVE_FIELD, out / "new" / f"{NEW_DOMAIN}.safetensors",
                              steps=new_steps or steps, lr=lr, seed=seed, threads=threads, progress=progress,
                              description=f"new domain {NEW_DOMAIN!r} for the empty reserve field")
    return {"edit": edit_info, "new": new_info}


def record_results(model_dir: Path, bench_dir: str | Path, edit_domain: str = "geography") -> dict:
    """The shipped numbers, computed exactly like `lokiserve eval` and written to bench_dir."""
    bench = Path(bench_dir)
    world = str(model_dir / "world.jsonl")
    abl = run_eval(model_dir, do_ablation=True)
    write_json(bench / "demo_ablation.json", abl)
    (bench / "demo_ablation.md").write_text(ablation_markdown(abl["ablation"]))
    ablation_png(abl["ablation"], bench / "demo_ablation.png")
    base = run_eval(model_dir)
    write_json(bench / "demo_eval.json", base)
    edit = run_eval(model_dir, facts=[world, str(model_dir / "edits" / f"{edit_domain}.jsonl")],
                    apply=[f"{edit_domain}={model_dir / 'edits' / f'{edit_domain}.safetensors'}"])
    write_json(bench / "demo_edit.json", edit)
    new = run_eval(model_dir, facts=[world, str(model_dir / "new" / f"{NEW_DOMAIN}.jsonl")],
                   apply=[f"{RESERVE_FIELD}={model_dir / 'new' / f'{NEW_DOMAIN}.safetensors'}"])
    write_json(bench / "demo_new.json", new)
    return {"all_fields": {d: r["accuracy"] for d, r in base["domains"].items()},
            "ablation": abl["ablation"]["accuracy"],
            "edit": {**{d: r["accuracy"] for d, r in edit["domains"].items()},
                     **{g: r["accuracy"] for g, r in edit.get("groups", {}).items()}},
            "new": {d: r["accuracy"] for d, r in new["domains"].items()}}


__all__ = ["build_shipped_fields", "record_results", "write_json"]
