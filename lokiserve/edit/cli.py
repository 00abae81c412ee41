"""``lokiserve edit`` (and ``train-field``, the same writer): facts file in,
verified field file out; refused with the numbers when verification fails."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from lokiserve.cli_types import FRACTION, POSITIVE_INT
from lokiserve.edit.facts import FactsError, read_facts_file
from lokiserve.edit.routing import RoutingConfig
from lokiserve.edit.values import ValueConfig
from lokiserve.edit.verify import Thresholds
from lokiserve.edit.writer import WriteOptions


def add_verification_arguments(p: argparse.ArgumentParser) -> None:
    t = Thresholds()
    g = p.add_argument_group("verification (measured on the written field before anything is written)")
    g.add_argument("--hold", action="append", default=[], metavar="FILE",
                   help="JSONL rows {prompt, answer} held as they are now *in addition to* the retain set, every one "
                   "measured: in lifelong editing, the facts files of the earlier writes into this field (a new key "
                   "may otherwise fire on an earlier edit's prompt); repeatable")
    g.add_argument("--report", default=None, help="write the verification report (JSON) to this file")
    g.add_argument("--force", action="store_true", help="write the field even if verification fails")
    g.add_argument("--min-efficacy", type=FRACTION, default=t.efficacy,
                   help="share of facts whose prompt must give the new answer, greedy (default: %(default)s)")
    g.add_argument("--min-neighbors", type=FRACTION, default=t.neighbors,
                   help="share of neighbour prompts that must answer as before (default: %(default)s)")
    g.add_argument("--min-retain", type=FRACTION, default=t.retain,
                   help="share of retain facts (overall and per domain) that must answer as before "
                   "(default: %(default)s)")
    g.add_argument("--min-unrelated-top1", type=FRACTION, default=t.unrelated_top1,
                   help="share of unrelated-text positions whose top-1 next token must stay (default: %(default)s)")
    g.add_argument("--start-from", default=None, metavar="FIELD_FILE",
                   help="load this field file into FIELD first and add the facts to it (sequential, lifelong "
                   "editing: earlier facts keep their slots; default: the field as the checkpoint has it)")
    g.add_argument("--value-steps", type=POSITIVE_INT, default=ValueConfig().steps,
                   help="most gradient steps of the value solve (general writer; default: %(default)s)")
    g.add_argument("--value-precision", choices=("auto", "fp32"), default="auto",
                   help="auto: value steps in bf16 where the CPU multiplies it natively (AMX or AVX512-BF16), then fp32 "
                   "judges and finishes them; "
                   "fp32: every step in fp32 (slower; the verification is fp32 either way; default: %(default)s)")
    g.add_argument("--key-steps", type=POSITIVE_INT, default=RoutingConfig().steps,
                   help="steps of the key fit (general writer; default: %(default)s)")


def add_edit_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "edit", help="write any facts into one field, verified; backbone and every other field frozen",
        description="Write the facts of FACTS.jsonl (rows {prompt, answer[, subject, paraphrases, neighbors]}, "
        "any answer) into FIELD, verify efficacy, paraphrases and locality on the written field, and write the "
        "field file only if every threshold holds (or --force). Exit 0 when written, 1 when refused, 2 on bad "
        "input.")
    from lokiserve.paths import default_model_dir

    p.add_argument("--model", default=str(default_model_dir()), help="model directory (default: %(default)s)")
    p.add_argument("--facts", required=True, help="facts file (JSONL, see README 'Writing facts')")
    p.add_argument("--field", required=True, help="field name or index")
    p.add_argument("--out", required=True, help="field file to write (.safetensors)")
    p.add_argument("--retain", default=None, help="JSONL rows {prompt, answer[, domain]} that must not change "
                   "(default: the model's own facts)")
    p.add_argument("--threads", type=POSITIVE_INT, default=1, help="torch threads (default: %(default)s)")
    p.add_argument("--description", default="", help="free text stored in the field file's metadata")
    add_verification_arguments(p)
    p.set_defaults(func=cmd_edit, closed_form=False)
    return p


def options_from_args(args) -> WriteOptions:
    return WriteOptions(
        routing=RoutingConfig(steps=args.key_steps),
        values=ValueConfig(steps=args.value_steps, bf16=None if args.value_precision == "auto" else False),
        thresholds=Thresholds(efficacy=args.min_efficacy, neighbors=args.min_neighbors, retain=args.min_retain,
                              unrelated_top1=args.min_unrelated_top1),
    )


def _read_retain(path: str | None) -> list[dict] | None:
    if path is None:
        return None
    rows = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if line.strip():
            row = json.loads(line)
            if not isinstance(row, dict) or not isinstance(row.get("prompt"), str) or not isinstance(
                    row.get("answer"), str):
                raise FactsError(f"{path}:{n}: a retain row needs string 'prompt' and 'answer'")
            rows.append(row)
    return rows


def cmd_edit(args, **train_kwargs) -> int:
    import torch

    from lokiserve.edit.service import write_verified
    from lokiserve.memory import write_field
    from lokiserve.train.checkpoint import load_model

    torch.set_num_threads(args.threads)
    try:
        facts = read_facts_file(args.facts)
        retain = _read_retain(args.retain)
        held = [{"domain": "held", **row, "held": True} for path in args.hold for row in _read_retain(path)]
        if held:
            from lokiserve.edit.service import default_retain

            retain = (default_retain(args.model) if retain is None else retain) + held
        model = load_model(args.model)
        model.field_index(args.field)
        if args.start_from:
            from lokiserve.memory import read_field

            model.apply_field(args.field, read_field(args.start_from))
        t0 = time.time()
        result = write_verified(args.model, model, args.field, facts, retain=retain, options=options_from_args(args),
                                description=args.description, closed_form=args.closed_form,
                                log=lambda m: print(m, file=sys.stderr), **train_kwargs)
    except (FactsError, KeyError, ValueError, FileNotFoundError) as exc:  # FieldError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = result.report
    report["wall_seconds"] = round(time.time() - t0, 1)
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2) + "\n")
    summary = {k: report.get(k) for k in ("facts", "efficacy", "paraphrase_given", "paraphrase_held_out", "neighbors",
                                          "retain", "unrelated_top1", "unrelated_kl", "seconds_per_fact", "method")}
    print(json.dumps(summary))
    if not result.passed and not args.force:
        print(f"refused: {'; '.join(report['failures'])}. No file written (--force writes it anyway).",
              file=sys.stderr)
        return 1
    write_field(result.field, args.out)
    print(f"wrote {args.out}" + ("" if result.passed else " (forced: verification failed)"))
    return 0


__all__ = ["add_edit_parser", "add_verification_arguments", "cmd_edit", "options_from_args"]
