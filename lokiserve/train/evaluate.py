"""Greedy exact-answer accuracy per domain, and the field ablation matrix.

A fact is correct when greedy decoding after ``<s> prompt`` produces exactly
the answer's tokens and then a token that does not continue the word (a
space-led token, punctuation, ``</s>``...). Greedy decoding produces the
answer iff, fed the prompt and the answer so far, the argmax at every answer
position is the next answer token; so one teacher-forced forward pass per
fact gives exactly the greedy result (up to exact logit ties), batched. The
evaluator uses the reference model's forward (``lokiserve.model``), not the
training shortcut. ``generate_check`` runs real ``model.generate`` for
cross-checking.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Iterable

import torch
from tokenizers import Tokenizer

from lokiserve.memory import read_field
from lokiserve.model import LoKiFormerForCausalLM
from lokiserve.train.checkpoint import load_model
from lokiserve.train.tokenizer import encode, load_tokenizer, special_ids
from lokiserve.train.world import read_facts


def _continues_word(tok: Tokenizer) -> torch.Tensor:
    """Per vocab id: does this token glue onto the previous word?"""
    V = tok.get_vocab_size()
    out = torch.zeros(V, dtype=torch.bool)
    specials = set(special_ids(tok).values())
    for i in range(V):
        if i in specials:
            continue
        s = tok.decode([i], skip_special_tokens=False)
        out[i] = bool(s) and (s[0].isalnum() or s[0] in "'-")
    return out


_CONT_CACHE: dict[int, torch.Tensor] = {}


def _pct(c: int, n: int) -> float:
    return round(100.0 * c / n, 2) if n else 0.0


@torch.no_grad()
def fact_correct(model: LoKiFormerForCausalLM, tok: Tokenizer, rows: list[dict], batch_size: int = 256) -> list[bool]:
    """Greedy exact match for each row (prompt, answer)."""
    key = id(tok)
    if key not in _CONT_CACHE:
        _CONT_CACHE.clear()
        _CONT_CACHE[key] = _continues_word(tok)
    cont = _CONT_CACHE[key]
    sp = special_ids(tok)
    encoded = []
    for r in rows:
        p = [sp["bos"]] + encode(tok, r["prompt"])
        a = encode(tok, r["answer"])
        encoded.append((p, a))
    order = sorted(range(len(rows)), key=lambda i: len(encoded[i][0]) + len(encoded[i][1]))
    result = [False] * len(rows)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        T = max(len(encoded[i][0]) + len(encoded[i][1]) for i in chunk)
        ids = torch.full((len(chunk), T), sp["pad"], dtype=torch.long)
        for b, i in enumerate(chunk):
            full = encoded[i][0] + encoded[i][1]
            ids[b, : len(full)] = torch.tensor(full)
        pred = model(ids).logits.argmax(-1)  # right padding + causal: padding never leaks back
        for b, i in enumerate(chunk):
            p, a = encoded[i]
            n = len(p)
            got = pred[b, n - 1 : n - 1 + len(a)].tolist()
            after = int(pred[b, n - 1 + len(a)])
            result[i] = got == a and not bool(cont[after])
    return result


def summarize(rows: list[dict], correct: list[bool]) -> dict:
    domains: dict[str, list[int]] = OrderedDict()
    groups: dict[str, list[int]] = OrderedDict()
    for r, ok in zip(rows, correct):
        domains.setdefault(r["domain"], [0, 0])
        domains[r["domain"]][0] += int(ok)
        domains[r["domain"]][1] += 1
        if r.get("changed") is not None:
            g = f"{r['domain']}/{'changed' if r['changed'] else 'unchanged'}"
            groups.setdefault(g, [0, 0])
            groups[g][0] += int(ok)
            groups[g][1] += 1
    out = {
        "domains": {d: {"correct": c, "total": n, "accuracy": _pct(c, n)} for d, (c, n) in domains.items()},
        "overall": {"correct": sum(correct), "total": len(correct), "accuracy": _pct(sum(correct), len(correct))},
    }
    if groups:
        out["groups"] = {g: {"correct": c, "total": n, "accuracy": _pct(c, n)} for g, (c, n) in groups.items()}
    return out


def evaluate_facts(model, tok, rows: list[dict], per_domain_limit: int | None = None) -> dict:
    if per_domain_limit:
        seen: dict[str, int] = {}
        kept = []
        for r in rows:
            seen[r["domain"]] = seen.get(r["domain"], 0) + 1
            if seen[r["domain"]] <= per_domain_limit:
                kept.append(r)
        rows = kept
    return summarize(rows, fact_correct(model, tok, rows))


@torch.no_grad()
def generate_check(model, tok, rows: list[dict]) -> list[bool]:
    """The same verdict through ``model.generate`` (slow; for tests)."""
    sp = special_ids(tok)
    cont = _continues_word(tok)
    out = []
    for r in rows:
        p = [sp["bos"]] + encode(tok, r["prompt"])
        a = encode(tok, r["answer"])
        ids = torch.tensor([p])
        gen = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=len(a) + 1,
                             do_sample=False,
                             pad_token_id=sp["pad"])[0, len(p):].tolist()
        nxt = gen[len(a)] if len(gen) > len(a) else sp["eos"]
        out.append(gen[: len(a)] == a and not bool(cont[nxt]))
    return out


# --------------------------------------------------------------------------- facts and memory state


def merge_facts(files: Iterable[str | Path]) -> list[dict]:
    """Facts of several files; a later file's fact replaces an earlier one with the same prompt."""
    merged: dict[str, dict] = OrderedDict()
    for path in files:
        for row in read_facts(path):
            merged[row["prompt"]] = row
    return list(merged.values())


def apply_specs(model, zero: Iterable[str] = (), apply: Iterable[str] = ()) -> None:
    """``--apply ID=FILE`` then ``--zero FIELD`` on the live model."""
    for spec in apply:
        if "=" not in spec:
            raise ValueError(f"--apply expects ID=FILE, got {spec!r}")
        fid, path = spec.split("=", 1)
        model.apply_field(fid, read_field(path))
    for fid in zero:
        model.zero_field(fid)


def ablation(model, tok, rows: list[dict]) -> dict:
    """Zero each field in turn; accuracy of every domain under each condition."""
    memory = model.field_memory
    snap = memory.snapshot()
    matrix = OrderedDict()
    matrix["none"] = evaluate_facts(model, tok, rows)
    for name in model.field_names:
        memory.restore(snap)
        memory.zero(memory.index(name))
        matrix[name] = evaluate_facts(model, tok, rows)
    memory.restore(snap)
    domains = list(matrix["none"]["domains"])
    base = {d: matrix["none"]["domains"][d]["accuracy"] for d in domains}
    table = {cond: {d: res["domains"][d]["accuracy"] for d in domains} for cond, res in matrix.items()}
    return {"domains": domains, "fields": model.field_names, "accuracy": table,
            "delta": {c: {d: round(v - base[d], 2) for d, v in row.items()} for c, row in table.items()},
            "detail": matrix}


def ablation_markdown(result: dict) -> str:
    domains = result["domains"]
    lines = ["| field zeroed | " + " | ".join(domains) + " |", "|---|" + "---|" * len(domains)]
    for cond, row in result["accuracy"].items():
        label = "none (all fields)" if cond == "none" else cond
        lines.append(f"| {label} | " + " | ".join(f"{row[d]:.1f}" for d in domains) + " |")
    return "\n".join(lines) + "\n"


def ablation_png(result: dict, path: str | Path, title: str = "Greedy exact-answer accuracy (%)") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    domains = result["domains"]
    conds = list(result["accuracy"])
    data = [[result["accuracy"][c][d] for d in domains] for c in conds]
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(domains), 1.0 + 0.55 * len(conds)))
    im = ax.imshow(data, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(domains)), domains, rotation=20)
    ax.set_yticks(range(len(conds)), ["none" if c == "none" else f"zero {c}" for c in conds])
    ax.set_xlabel("domain evaluated")
    ax.set_ylabel("field zeroed")
    for i, row in enumerate(data):
        for j, v in enumerate(row):
            ax.text(j, i, f"{v:.0f}", ha="center", va="center", color="white" if v < 60 else "black")
    fig.colorbar(im, ax=ax)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_eval(model_dir: str | Path, facts: list[str] | None = None, zero: list[str] | None = None,
             apply: list[str] | None = None, do_ablation: bool = False) -> dict:
    """What ``lokiserve eval`` computes (JSON-ready)."""
    model_dir = Path(model_dir)
    model = load_model(model_dir)
    tok = load_tokenizer(model_dir)
    files = list(facts) if facts else [str(model_dir / "world.jsonl")]
    rows = merge_facts(files)
    apply_specs(model, zero or (), apply or ())
    result = {"model": str(model_dir), "facts": files, "zero": list(zero or ()), "apply": list(apply or ()),
              "field_state": {n: model.field_state(n) for n in model.field_names}}
    if do_ablation:
        result["ablation"] = ablation(model, tok, rows)
        result.update(result["ablation"]["detail"]["none"])
    else:
        result.update(evaluate_facts(model, tok, rows))
    return result


__all__ = ["fact_correct", "evaluate_facts", "generate_check", "ablation", "ablation_markdown", "ablation_png",
           "run_eval", "merge_facts", "apply_specs"]
