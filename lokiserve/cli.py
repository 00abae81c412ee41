"""``lokiserve`` command line.

Each subcommand builds its parser in its own ``add_<name>_parser`` function
and runs through its own ``cmd_<name>`` function, so new subcommands (e.g.
``serve``) plug in with one more pair and one line in ``build_parser``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO_ROOT / "memories" / "demo"
BENCH_DIR = REPO_ROOT / "bench" / "results"


def _number(kind, low: float, high: float | None = None, low_open: bool = False):
    """argparse type: a finite ``kind`` in [low, high] (or (low, high] with
    ``low_open``), so a bad value stops with a clear message before any work."""
    import math

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        bad = not math.isfinite(value) or (value <= low if low_open else value < low) or (
            high is not None and value > high)
        if bad:
            lo = f"> {low:g}" if low_open else f">= {low:g}"
            raise argparse.ArgumentTypeError(f"{text} must be {lo}" + (f" and <= {high:g}" if high is not None else ""))
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


POSITIVE_INT = _number(int, 1)
COUNT = _number(int, 0)
POSITIVE = _number(float, 0.0, low_open=True)
WEIGHT = _number(float, 0.0)
FRACTION = _number(float, 0.0, 1.0)


def _write_json(path: str | Path, data: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


# --------------------------------------------------------------------------- train-demo


def add_train_demo_parser(sub) -> argparse.ArgumentParser:
    from lokiserve.train.trainer import TrainConfig

    d = TrainConfig()
    p = sub.add_parser(
        "train-demo",
        help="train the demo model on the synthetic world and ship it (plus an edited and a new-domain field)",
        description="Build the knowledge world and tokenizer, train the demo LoKiFormer, save it to --out, "
        "train the shipped edited field and new-domain field, and record the evaluation in --bench-dir.",
    )
    p.add_argument("--out", default=str(DEMO_DIR), help="where the model goes (default: %(default)s)")
    p.add_argument("--run-dir", default=str(REPO_ROOT / "runs" / "train-demo"),
                   help="checkpoints and the tokenizer build (default: %(default)s)")
    p.add_argument("--bench-dir", default=str(BENCH_DIR),
                   help="where demo_*.json/.md/.png results go (default: %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed for the world, init and sampling (default: %(default)s)")
    p.add_argument("--steps", type=POSITIVE_INT, default=d.steps, help="backbone training steps (default: %(default)s)")
    p.add_argument("--batch-size", type=POSITIVE_INT, default=d.batch_size, help="sequences per step (default: %(default)s)")
    p.add_argument("--lr", type=POSITIVE, default=d.lr, help="peak backbone learning rate (default: %(default)s)")
    p.add_argument("--memory-lr", type=POSITIVE, default=d.memory_lr,
                   help="peak learning rate of the field memory (default: %(default)s)")
    p.add_argument("--threads", type=POSITIVE_INT, default=d.threads,
                   help="torch threads; 1 is fastest when another process shares the 2 cores (default: %(default)s)")
    p.add_argument("--field-steps", type=POSITIVE_INT, default=400,
                   help="steps for each shipped field (edit, new domain) (default: %(default)s)")
    p.add_argument("--edit-domain", default="geography", help="domain whose field is edited (default: %(default)s)")
    p.add_argument("--no-resume", action="store_true", help="ignore a checkpoint in --run-dir and start over")
    p.add_argument("--skip-fields", action="store_true", help="only train and save the model")
    p.add_argument("--fields-only", action="store_true",
                   help="keep the model already in --out; only rebuild the shipped fields and the results")
    p.add_argument("--new-field-steps", type=POSITIVE_INT, default=None,
                   help="steps for the new-domain field (default: --field-steps)")
    p.add_argument("--field-lr", type=POSITIVE, default=1e-2,
                   help="peak learning rate of the shipped fields' training (default: %(default)s)")
    p.add_argument("--new-field-init", choices=["auto", "random", "queries"], default="auto",
                   help="init of the new-domain field (see train-field --init) (default: %(default)s)")
    p.add_argument("--bound-slots", action=argparse.BooleanOptionalAction, default=d.bound_slots,
                   help="bound-slot training: fact i of a domain lives in slot i of its field, its value is the "
                        "answer's row of a learned value codebook, and every step states a random world, so that "
                        "fields can be written with the backbone frozen (see memories/demo/README.md; "
                        "default: %(default)s)")
    p.add_argument("--retrieval-weight", type=WEIGHT, default=d.retrieval_weight,
                   help="with --bound-slots: weight of the loss that names each fact's slot (default: %(default)s)")
    p.add_argument("--shadow-share", type=FRACTION, default=d.shadow_share,
                   help="share of a domain's sequences that read a counterfactual shadow field instead of the real one "
                   "(0 = off; an attempt at editable fields, see memories/demo/README.md) (default: %(default)s)")
    p.add_argument("--memory-readout-weight", type=WEIGHT, default=d.memory_readout_weight,
                   help="weight of the loss that makes the last memory layer's output alone name each answer "
                   "(0 = off; also used for the shipped fields) (default: %(default)s)")
    p.add_argument("--practice-episode-steps", type=COUNT, default=d.practice_episode_steps,
                   help="frozen-backbone field-training steps at the start of each practice round (0 = off; an attempt "
                   "at new-domain insertion) (default: %(default)s)")
    p.add_argument("--practice-every", type=POSITIVE_INT, default=d.practice_every,
                   help="steps per practice round (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    p.set_defaults(func=cmd_train_demo)
    return p


def cmd_train_demo(args) -> int:
    from dataclasses import asdict

    from lokiserve.train.trainer import TrainConfig, save_demo, train_backbone

    from lokiserve.train.world import build_world

    t0 = time.time()
    try:
        cfg = TrainConfig(seed=args.seed, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                          memory_lr=args.memory_lr, threads=args.threads, shadow_share=args.shadow_share,
                          memory_readout_weight=args.memory_readout_weight,
                          practice_episode_steps=args.practice_episode_steps, practice_every=args.practice_every,
                          bound_slots=args.bound_slots, retrieval_weight=args.retrieval_weight)
    except ValueError as exc:  # options that do not go together: before any work
        print(f"lokiserve train-demo: error: {exc}", file=sys.stderr)
        return 2
    record_path = Path(args.bench_dir) / "demo_train.json"
    if args.fields_only:
        out = Path(args.out)
        world = build_world(cfg.seed, cfg.entities_per_domain, cfg.new_entities)
        record = json.loads(record_path.read_text()) if record_path.exists() else {}
        record["fields_command"] = " ".join(["lokiserve"] + sys.argv[1:])
    else:
        model, world, _tok, info = train_backbone(cfg, args.run_dir, resume=not args.no_resume,
                                                  progress=not args.no_progress)
        out = save_demo(model, world, args.run_dir, args.out, info.get("value_codebook"))
        print(f"saved model to {out} ({time.time() - t0:.0f}s)")
        record = {"command": " ".join(["lokiserve"] + sys.argv[1:]), "config": asdict(cfg),
                  "backbone_seconds": round(info["train_seconds"], 1),
                  "loss_first": info["history"][0]["loss"] if info["history"] else None,
                  "loss_last_ema": info["history"][-1]["loss_ema"] if info["history"] else None,
                  "evals": [h for h in info["history"] if "eval" in h]}
    if not args.skip_fields:
        fields_t0 = time.time()
        record["fields"] = build_shipped_fields(out, world, args.field_steps, args.seed, args.threads,
                                                args.edit_domain, progress=not args.no_progress,
                                                new_steps=args.new_field_steps, lr=args.field_lr,
                                                new_init=args.new_field_init,
                                                readout_weight=args.memory_readout_weight)
        record["results"] = record_results(out, args.bench_dir, args.edit_domain)
        record["fields_and_eval_seconds"] = round(time.time() - fields_t0, 1)
    if not args.fields_only:
        record["total_seconds"] = round(time.time() - t0, 1)
    _write_json(record_path, record)
    print(f"train-demo done in {time.time() - t0:.0f}s")
    return 0


def build_shipped_fields(out: Path, world, steps: int, seed: int, threads: int, edit_domain: str,
                         progress: bool = True, new_steps: int | None = None, lr: float = 1e-2,
                         new_init: str = "auto", readout_weight: float = 0.0) -> dict:
    """memories/demo/edits/<domain>.{jsonl,safetensors} and new/<domain>.{jsonl,safetensors}."""
    from lokiserve.train.field_training import train_field
    from lokiserve.train.world import NEW_DOMAIN, RESERVE_FIELD, edit_domain as make_edit, read_facts, write_facts

    out = Path(out)
    edit_facts = write_facts(make_edit(world, edit_domain, 0.5, seed), out / "edits" / f"{edit_domain}.jsonl")
    _, edit_info = train_field(out, read_facts(edit_facts), edit_domain, out / "edits" / f"{edit_domain}.safetensors",
                               steps=steps, lr=lr, seed=seed, threads=threads, progress=progress,
                               readout_weight=readout_weight,
                               description=f"{edit_domain} with half of its answers changed")
    new_facts = write_facts(world.new_facts, out / "new" / f"{NEW_DOMAIN}.jsonl")
    _, new_info = train_field(out, read_facts(new_facts), RESERVE_FIELD, out / "new" / f"{NEW_DOMAIN}.safetensors",
                              steps=new_steps or steps, lr=lr, init=new_init, seed=seed, threads=threads,
                              progress=progress, readout_weight=readout_weight,
                              description=f"new domain {NEW_DOMAIN!r} for the empty reserve field")
    return {"edit": edit_info, "new": new_info}


def record_results(model_dir: Path, bench_dir: str | Path, edit_domain: str = "geography") -> dict:
    """The shipped numbers, computed exactly like `lokiserve eval` and written to bench_dir."""
    from lokiserve.train.evaluate import ablation_markdown, ablation_png, run_eval
    from lokiserve.train.world import NEW_DOMAIN, RESERVE_FIELD

    bench = Path(bench_dir)
    world = str(model_dir / "world.jsonl")
    abl = run_eval(model_dir, do_ablation=True)
    _write_json(bench / "demo_ablation.json", abl)
    (bench / "demo_ablation.md").write_text(ablation_markdown(abl["ablation"]))
    ablation_png(abl["ablation"], bench / "demo_ablation.png")
    base = run_eval(model_dir)
    _write_json(bench / "demo_eval.json", base)
    edit = run_eval(model_dir, facts=[world, str(model_dir / "edits" / f"{edit_domain}.jsonl")],
                    apply=[f"{edit_domain}={model_dir / 'edits' / f'{edit_domain}.safetensors'}"])
    _write_json(bench / "demo_edit.json", edit)
    new = run_eval(model_dir, facts=[world, str(model_dir / "new" / f"{NEW_DOMAIN}.jsonl")],
                   apply=[f"{RESERVE_FIELD}={model_dir / 'new' / f'{NEW_DOMAIN}.safetensors'}"])
    _write_json(bench / "demo_new.json", new)
    return {"all_fields": {d: r["accuracy"] for d, r in base["domains"].items()},
            "ablation": abl["ablation"]["accuracy"],
            "edit": {**{d: r["accuracy"] for d, r in edit["domains"].items()},
                     **{g: r["accuracy"] for g, r in edit.get("groups", {}).items()}},
            "new": {d: r["accuracy"] for d, r in new["domains"].items()}}


# --------------------------------------------------------------------------- train-field


def add_train_field_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train-field",
        help="train one field on a facts file, backbone and every other field frozen; write a field file",
        description="Train only FIELD (every other tensor stays bit-identical) so that the model answers the "
        "facts in FACTS.jsonl, and write the field as a lokiserve field file. For a model trained with bound slots "
        "(the demo), an edit writes each fact's new answer into the slot its prompt reads, and a new domain gets "
        "one slot per fact with keys fitted to the frozen model's queries.",
    )
    p.add_argument("--model", default=str(DEMO_DIR), help="model directory (default: %(default)s)")
    p.add_argument("--facts", required=True,
                   help="JSONL facts to store, rows {domain, field, prompt, answer[, entity, relation]}")
    p.add_argument("--field", required=True, help="field name or index to train")
    p.add_argument("--out", required=True, help="field file to write (.safetensors)")
    p.add_argument("--retain", default=None,
                   help="JSONL facts that must stay answered (default: the model's world.jsonl, minus re-taught prompts)")
    p.add_argument("--steps", type=POSITIVE_INT, default=400,
                   help="optimizer steps; for a bound-slot model (the demo), the steps that refine a new field's "
                   "values after its keys are fitted, while an edit is written in closed form and takes none "
                   "(default: %(default)s)")
    p.add_argument("--lr", type=POSITIVE, default=1e-2, help="peak learning rate (default: %(default)s)")
    p.add_argument("--batch-size", type=POSITIVE_INT, default=64, help="sequences per step (default: %(default)s)")
    p.add_argument("--retain-share", type=FRACTION, default=0.5,
                   help="fraction of each batch drawn from the retain set (default: %(default)s)")
    p.add_argument("--init", choices=["auto", "current", "random", "queries"], default="auto",
                   help="current: start from the field's contents; random: fresh random memory; queries: keys from "
                   "the model's queries for the facts; auto = current, or queries if the field is empty "
                   "(default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed (default: %(default)s)")
    p.add_argument("--threads", type=POSITIVE_INT, default=1, help="torch threads (default: %(default)s)")
    p.add_argument("--allocate-slots", action="store_true",
                   help="when editing, first give each wrongly answered fact free slots of its own, keyed on its "
                   "query (an attempt at edit efficacy, see memories/demo/README.md)")
    p.add_argument("--readout-weight", type=WEIGHT, default=0.0,
                   help="weight of the memory read-out loss (for models trained with --memory-readout-weight) "
                   "(default: %(default)s)")
    p.add_argument("--description", default="", help="free text stored in the field file's metadata")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    p.set_defaults(func=cmd_train_field)
    return p


def cmd_train_field(args) -> int:
    from lokiserve.train.field_training import train_field
    from lokiserve.train.world import read_facts

    facts = read_facts(args.facts)
    retain = read_facts(args.retain) if args.retain else None
    _, info = train_field(args.model, facts, args.field, args.out, steps=args.steps, lr=args.lr,
                          batch_size=args.batch_size, retain_share=args.retain_share, retain=retain,
                          init=args.init, seed=args.seed, threads=args.threads, progress=not args.no_progress,
                          description=args.description, allocate=args.allocate_slots,
                          readout_weight=args.readout_weight)
    print(json.dumps(info))
    print(f"wrote {args.out}")
    return 0


# --------------------------------------------------------------------------- eval


def add_eval_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "eval",
        help="greedy exact-answer accuracy per domain, optionally with fields zeroed/replaced, or the ablation",
        description="Evaluate greedy exact-answer accuracy per domain. --apply runs before --zero.",
    )
    p.add_argument("--model", default=str(DEMO_DIR), help="model directory (default: %(default)s)")
    p.add_argument("--facts", action="append", default=None,
                   help="facts JSONL; repeat to merge (a later file's fact replaces one with the same prompt); "
                   "default: the model's world.jsonl")
    p.add_argument("--zero", action="append", default=[], metavar="FIELD", help="zero this field (repeatable)")
    p.add_argument("--apply", action="append", default=[], metavar="ID=FILE",
                   help="load a field file into field ID (name or index) first (repeatable)")
    p.add_argument("--ablation", action="store_true",
                   help="zero each field in turn and report the field x domain matrix")
    p.add_argument("--json", dest="json_out", default=None, help="write the result as JSON here")
    p.add_argument("--md", default=None, help="with --ablation: write the Markdown table here")
    p.add_argument("--png", default=None, help="with --ablation: write the heatmap here")
    p.add_argument("--threads", type=POSITIVE_INT, default=1, help="torch threads (default: %(default)s)")
    p.set_defaults(func=cmd_eval)
    return p


def cmd_eval(args) -> int:
    import torch

    from lokiserve.train.evaluate import ablation_markdown, ablation_png, run_eval

    torch.set_num_threads(args.threads)
    result = run_eval(args.model, facts=args.facts, zero=args.zero, apply=args.apply, do_ablation=args.ablation)
    if args.json_out:
        _write_json(args.json_out, result)
    if args.ablation:
        md = ablation_markdown(result["ablation"])
        if args.md:
            Path(args.md).write_text(md)
        if args.png:
            ablation_png(result["ablation"], args.png)
        print(md)
    else:
        for d, r in result["domains"].items():
            print(f"{d:12s} {r['accuracy']:6.2f}%  ({r['correct']}/{r['total']})")
        for g, r in result.get("groups", {}).items():
            print(f"{g:24s} {r['accuracy']:6.2f}%  ({r['correct']}/{r['total']})")
    return 0


# --------------------------------------------------------------------------- serve


def add_serve_parser(sub) -> argparse.ArgumentParser:
    from lokiserve.server.launcher import add_serve_arguments

    p = sub.add_parser(
        "serve",
        help="serve a model: vLLM's OpenAI API plus the memory admin API (default: the demo model)",
        description="Start vLLM's OpenAI-compatible server with the LoKiFormer plugin and the memory admin "
        "API on one engine. Flags not listed here are vLLM's (e.g. --dtype, --tensor-parallel-size, "
        "--enforce-eager) and are passed through unchanged.",
    )
    add_serve_arguments(p)
    p.set_defaults(func=cmd_serve, passthrough_ok=True)
    return p


def cmd_serve(args) -> int:
    from lokiserve.server.launcher import run_serve

    return run_serve(args, args.passthrough)


# --------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lokiserve", description="LoKiFormer knowledge-memory server tools")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_train_demo_parser(sub)
    add_train_field_parser(sub)
    add_eval_parser(sub)
    add_serve_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "passthrough_ok", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.passthrough = extra
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
