"""Can a field of the shipped demo model be edited at all? An upper bound.

``lokiserve train-field`` trains a field on sampled training text. This
diagnostic removes every obstacle but the architecture: it optimises the
target field's keys and values (every KMM layer; backbone and other fields
frozen) directly on the evaluation itself, i.e. cross-entropy of the answer's
first token at the last prompt token, full batch, for the edited domain's
prompts (changed and unchanged facts) plus a retain sample of the other
domains. If even this cannot make the changed facts answer their new values,
no field-training recipe can on this backbone: the field's contents do not
reach the answer with enough gain, and the fix lies in how the backbone is
trained (memories/demo/README.md).

    python bench/field_edit_capacity.py                      # 200 steps, lr 3e-2
    python bench/field_edit_capacity.py --allocate --lr 0.3 --tag _allocate_lr0.3
    python bench/field_edit_capacity.py --smoke                  # seconds, temp dir

Writes ``bench/results/field_edit_capacity.json`` (or ``--out``): the loss
and the accuracies (changed / unchanged facts of the domain / retained other
facts, argmax of the first answer token) every ``--every`` steps.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default=str(common.DEMO), help="model directory (with world.jsonl)")
    p.add_argument("--facts", default=None, help="edited facts (default: MODEL/edits/geography.jsonl)")
    p.add_argument("--field", default="geography", help="field to optimise")
    p.add_argument("--steps", type=int, default=200, help="Adam steps (full batch)")
    p.add_argument("--lr", type=float, default=3e-2, help="Adam learning rate")
    p.add_argument("--retain", type=int, default=150, help="prompts of the other domains kept in every batch")
    p.add_argument("--every", type=int, default=25, help="report every this many steps")
    p.add_argument("--allocate", action="store_true",
                   help="first give each wrongly answered fact free slots of its own (train-field --allocate-slots)")
    p.add_argument("--tag", default="", help="result file suffix: field_edit_capacity<tag>.json")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--out", default=None, help="result directory (default: bench/results; with --smoke a temp dir)")
    p.add_argument("--smoke", action="store_true", help="3 steps, 20 retained prompts, seconds; temp dir unless --out")
    args = p.parse_args(argv)
    if args.smoke:
        args.steps, args.retain, args.every = 3, 20, 1
    if args.steps < 1 or args.every < 1 or args.retain < 0 or not args.lr > 0:
        p.error("--steps and --every must be >= 1, --retain >= 0, --lr > 0")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from lokiserve.train.tokenizer import encode, load_tokenizer, special_ids
    from lokiserve.train.trainer import load_model
    from lokiserve.train.world import read_facts

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model_dir = Path(args.model)
    facts_path = Path(args.facts) if args.facts else model_dir / "edits" / f"{args.field}.jsonl"
    model, tok = load_model(model_dir), load_tokenizer(model_dir)
    sp = special_ids(tok)
    edits = read_facts(facts_path)
    world = read_facts(model_dir / "world.jsonl")
    original = {r["prompt"]: r["answer"] for r in world}
    changed = torch.tensor([r["answer"] != original.get(r["prompt"]) for r in edits])
    others = [r for r in world if r["field"] != args.field]
    others = random.Random(0).sample(others, min(args.retain, len(others)))
    rows = edits + others

    seqs = [[sp["bos"]] + encode(tok, r["prompt"]) for r in rows]
    T = max(map(len, seqs))
    ids = torch.full((len(rows), T), sp["pad"])
    mask = torch.zeros(len(rows), T, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    last = torch.tensor([len(s) - 1 for s in seqs])
    target = torch.tensor([encode(tok, r["answer"])[0] for r in rows])

    f = model.field_index(args.field)
    allocation = None
    if args.allocate:
        from lokiserve.train.field_training import allocate_edit_slots

        allocation = allocate_edit_slots(model, f, tok, edits, [r for r in world if r["field"] == args.field])
    for p in model.parameters():
        p.requires_grad_(False)
    params = []
    only_f = torch.zeros(len(model.field_names), 1, 1)
    only_f[f] = 1.0
    for mem in model.memory_modules().values():
        for t in (mem.keys, mem.values):
            t.requires_grad_(True)
            t.register_hook(lambda g: g * only_f)  # zero gradient (so zero Adam update) for other fields
            params.append(t)
    opt = torch.optim.Adam(params, lr=args.lr)
    n = len(edits)

    def accuracies(logits):
        ok = logits.argmax(-1) == target
        return {"changed": round(100 * ok[:n][changed].float().mean().item(), 1),
                "unchanged": round(100 * ok[:n][~changed].float().mean().item(), 1),
                "other_domains": round(100 * ok[n:].float().mean().item(), 1) if len(others) else None}

    history, t0 = [], time.time()
    for step in range(args.steps + 1):
        logits = model(ids, attention_mask=mask).logits[torch.arange(len(rows)), last]
        loss = torch.nn.functional.cross_entropy(logits, target)
        if step % args.every == 0 or step == args.steps:
            rec = {"step": step, "loss": round(loss.item(), 4), **accuracies(logits.detach()),
                   "seconds": round(time.time() - t0, 1)}
            history.append(rec)
            print(json.dumps(rec), flush=True)
        if step == args.steps:
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    out = common.out_dir(args.out, args.smoke)
    result = {
        "benchmark": "field_edit_capacity", "smoke": args.smoke,
        "command": " ".join(["python", "bench/field_edit_capacity.py", *(sys.argv[1:] if argv is None else argv)]),
        "model": str(model_dir), "facts": str(facts_path), "field": args.field,
        "settings": {"steps": args.steps, "lr": args.lr, "retain": len(others), "threads": args.threads,
                     "allocate": args.allocate}, "allocation": allocation,
        "facts_changed": int(changed.sum()), "facts_unchanged": int((~changed).sum()),
        "history": history, "final": history[-1], "machine": common.machine_info(),
    }
    path = Path(out) / f"field_edit_capacity{args.tag}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
