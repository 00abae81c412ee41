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

from lokiserve.cli_types import FRACTION, POSITIVE, POSITIVE_INT, WEIGHT
from lokiserve.paths import BENCH_DIR, REPO_ROOT, default_model_dir

DEMO_DIR = default_model_dir()


# --------------------------------------------------------------------------- train-demo


def add_train_demo_parser(sub) -> argparse.ArgumentParser:
    from lokiserve.train.config import TrainConfig

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
    p.add_argument("--retrieval-weight", type=WEIGHT, default=d.retrieval_weight,
                   help="weight of the loss that names each fact's slot (default: %(default)s)")
    p.add_argument("--practice-every", type=POSITIVE_INT, default=d.practice_every,
                   help="steps per practice round (default: %(default)s)")
    p.add_argument("--answer-tokens", type=POSITIVE_INT, default=d.answer_tokens,
                   help="answer tokens a slot's value lists, each read at its own position (default: %(default)s)")
    p.add_argument("--name-share", type=FRACTION, default=d.name_share,
                   help="share of the random world's answers that are random names of word pieces "
                   "(default: %(default)s)")
    p.add_argument("--value-dim", type=POSITIVE_INT, default=d.kmm_value_dim,
                   help="the memory's value width d_v (default: %(default)s)")
    p.add_argument("--codebook-from-embeddings", action=argparse.BooleanOptionalAction,
                   default=d.codebook_from_embeddings,
                   help="with --answer-tokens > 1, each value chunk is a free row plus a learned projection of the "
                   "token's embedding (default: %(default)s)")
    p.add_argument("--whole-practice-rounds", action=argparse.BooleanOptionalAction, default=d.whole_practice_rounds,
                   help="start no practice round too close to the end to run whole (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    p.set_defaults(func=cmd_train_demo)
    return p


def cmd_train_demo(args) -> int:
    from dataclasses import asdict

    from lokiserve.train.checkpoint import save_demo
    from lokiserve.train.config import TrainConfig
    from lokiserve.train.demo import build_shipped_fields, record_results, write_json
    from lokiserve.train.trainer import train_backbone
    from lokiserve.train.world import build_world

    if args.value_dim % args.answer_tokens:  # a value is answer_tokens chunks of equal width
        print(f"lokiserve train-demo: error: --value-dim {args.value_dim} is not a multiple of --answer-tokens "
              f"{args.answer_tokens}", file=sys.stderr)
        return 2
    t0 = time.time()
    cfg = TrainConfig(seed=args.seed, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                      memory_lr=args.memory_lr, threads=args.threads, practice_every=args.practice_every,
                      retrieval_weight=args.retrieval_weight, answer_tokens=args.answer_tokens,
                      name_share=args.name_share, kmm_value_dim=args.value_dim,
                      codebook_from_embeddings=args.codebook_from_embeddings,
                      whole_practice_rounds=args.whole_practice_rounds)
    record_path = Path(args.bench_dir) / "demo_train.json"
    if args.fields_only:
        out = Path(args.out)
        world = build_world(cfg.seed, cfg.entities_per_domain, cfg.new_entities)
        record = json.loads(record_path.read_text()) if record_path.exists() else {}
        record["fields_command"] = " ".join(["lokiserve"] + sys.argv[1:])
    else:
        model, world, _tok, info = train_backbone(cfg, args.run_dir, resume=not args.no_resume,
                                                  progress=not args.no_progress)
        out = save_demo(model, world, args.run_dir, args.out, info["value_codebook"])
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
                                                new_steps=args.new_field_steps, lr=args.field_lr)
        record["results"] = record_results(out, args.bench_dir, args.edit_domain)
        record["fields_and_eval_seconds"] = round(time.time() - fields_t0, 1)
    if not args.fields_only:
        record["total_seconds"] = round(time.time() - t0, 1)
    write_json(record_path, record)
    print(f"train-demo done in {time.time() - t0:.0f}s")
    return 0


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
    p.add_argument("--seed", type=int, default=0, help="seed (default: %(default)s)")
    p.add_argument("--threads", type=POSITIVE_INT, default=1, help="torch threads (default: %(default)s)")
    p.add_argument("--description", default="", help="free text stored in the field file's metadata")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    from lokiserve.edit.cli import add_verification_arguments

    add_verification_arguments(p)
    p.set_defaults(func=cmd_train_field, closed_form=True)
    return p


def cmd_train_field(args) -> int:
    """The verified writer (``lokiserve edit``); on the demo's own fact rows it
    tries the bound-slot closed form first (``lokiserve.edit.service``)."""
    from lokiserve.edit.cli import cmd_edit

    return cmd_edit(args, steps=args.steps, lr=args.lr, batch_size=args.batch_size,
                    retain_share=args.retain_share, seed=args.seed, threads=args.threads,
                    progress=not args.no_progress)


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

    from lokiserve.train.demo import write_json
    from lokiserve.train.evaluate import ablation_markdown, ablation_png, run_eval

    torch.set_num_threads(args.threads)
    result = run_eval(args.model, facts=args.facts, zero=args.zero, apply=args.apply, do_ablation=args.ablation)
    if args.json_out:
        write_json(args.json_out, result)
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


def add_convert_parser(sub) -> argparse.ArgumentParser:
    from lokiserve.convert.cli import add_convert_parser as add

    return add(sub)


def add_fields_parser(sub) -> argparse.ArgumentParser:
    from lokiserve.admin_cli import add_fields_parser as add

    return add(sub)


def add_fleet_parser(sub) -> argparse.ArgumentParser:
    from lokiserve.fleet_cli import add_fleet_parser as add

    return add(sub)


# Commands an operator runs against a live server, often from scripts: their parsers import neither torch
# nor transformers, so `lokiserve fields ...` answers in well under a second instead of several.
LIGHT_COMMANDS = {"fields": add_fields_parser, "fleet": add_fleet_parser}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Every subcommand's parser, or only ``only``'s (one of ``LIGHT_COMMANDS``)."""
    parser = argparse.ArgumentParser(prog="lokiserve", description="LoKiFormer knowledge-memory server tools")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    if only is not None:
        LIGHT_COMMANDS[only](sub)
        return parser
    add_train_demo_parser(sub)
    add_train_field_parser(sub)
    from lokiserve.edit.cli import add_edit_parser

    add_edit_parser(sub)
    add_eval_parser(sub)
    add_serve_parser(sub)
    add_fields_parser(sub)
    add_fleet_parser(sub)
    add_convert_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(only=argv[0] if argv and argv[0] in LIGHT_COMMANDS else None)
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
