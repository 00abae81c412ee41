"""Train one field with the backbone and every other field frozen.

Only the named field's slice of ``keys``/``values`` (in every KMM layer)
changes; every other tensor of the model stays bit-identical. The result is
written as a field file (``lokiserve.field/1``) bound to the model's backbone
hash.

**Bound-slot models** (the shipped demo, ``train-demo --bound-slots``): the
backbone was trained to read fact *i* from slot *i* and to decode the value
there, an answer's row of the model's value codebook. So:

* an *edit* of a field is written, not trained: each fact's prompt finds the
  slot it reads (in every KMM layer), and that slot's value becomes the new
  answer's codebook row (``write_edit``); keys stay;
* a *new* field (an empty slot) puts fact *i* in slot *i* with its answer's
  codebook row, and fits the keys to the frozen model's own memory queries:
  every phrasing of a fact must read its slot, every other domain's prompt
  the empty null slot (``fit_bound_keys``); then ``steps`` optimizer steps on
  the language-model and retrieval losses refine the facts' values (keys
  fixed, the null slot kept empty; layer 3's queries depend on layer 1's
  values, so the retrieval loss reaches them).

**Other models** (a field's values are free parameters): gradient steps on
the field's keys and values with a *retain* set: each batch mixes the facts
to store with the model's own facts (``world.jsonl`` next to the weights)
whose prompts are not being re-taught, so that the field does not learn to
override other domains (design section 5). An edit starts from the field's
current contents; an empty field starts with keys taken from the frozen
model's own memory queries for the new prompts (``init_field_from_queries``).
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from lokiserve.memory import Field, write_field
from lokiserve.train.bound_slots import answer_token_ids, answer_values, codebook_tokens, model_codebook, null_slot
from lokiserve.train.checkpoint import load_model
from lokiserve.train.config import TrainConfig
from lokiserve.train.data import Encoder, fact_sequence
from lokiserve.train.evaluate import evaluate_facts
from lokiserve.train.field_ops import OneFieldTrainable, centred_queries, prompt_queries
from lokiserve.train.step import train_micro_batches
from lokiserve.train.tokenizer import load_tokenizer, special_ids
from lokiserve.train.world import facts_from_rows, read_facts


@torch.no_grad()
def init_field_from_queries(model, f: int, tok, rows: list[dict], gen: torch.Generator, sharpness: float = 2.0):
    """Empty-field init from the frozen model's own memory queries.

    Slot j belongs to fact j mod n, read by head (j // n) mod H. Queries of one
    relation share a large common part (the template) and differ little by
    entity, so a random key is picked by all of them alike and most slots are
    never selected (and never learn). The key of slot j is therefore the
    fact's query minus its relation's mean query, with the mean direction
    projected out (so the common part adds nothing to the score), normalised
    and scaled: every fact starts with its own slot. Values start small."""
    model.field_memory.reinit(f, gen)
    queries = prompt_queries(model, tok, rows)
    for li, mem in model.memory_modules().items():
        q = centred_queries(queries[li], rows)  # (n, H, dk)
        q = q / q.norm(dim=-1, keepdim=True).clamp(min=1e-6)
        n, H, dk = q.shape
        N = mem.keys.shape[1]
        j = torch.arange(N)
        mem.keys[f].copy_(q[j % n, (j // n) % H] * sharpness * dk ** 0.5)


# --------------------------------------------------------------------------- bound-slot models


@torch.no_grad()
def read_slots(model, f: int, tok, rows: list[dict]) -> dict[int, torch.Tensor]:
    """Per KMM layer, the fact slot of field ``f`` that each prompt reads most
    (softmax weight summed over heads) at the position that predicts the
    answer. The null slot is never a fact's slot: it is excluded."""
    queries = prompt_queries(model, tok, rows)
    out = {}
    for li, mem in model.memory_modules().items():
        scores = torch.einsum("nhd,sd->nhs", queries[li], mem.keys[f]) / math.sqrt(mem.key_dim)
        weight = scores.softmax(dim=-1).sum(dim=1)
        weight[:, null_slot(weight.shape[-1])] = -1.0
        out[li] = weight.argmax(dim=-1)
    return out


def answer_ids(tok, rows: list[dict], answer_tokens: int = 1) -> torch.Tensor:
    """The token each row's bound slot stores (its answer's first, (n,));
    with ``answer_tokens`` J > 1, its first J tokens, (n, J)
    (``bound_slots.answer_token_ids``)."""
    enc = Encoder(tok)
    ids = torch.tensor([answer_token_ids(enc, r["answer"], answer_tokens) for r in rows], dtype=torch.long)
    return ids.squeeze(-1) if answer_tokens == 1 else ids


def write_edit(model, f: int, tok, rows: list[dict], codebook: torch.Tensor, retain: list[dict],
               log=print) -> dict:
    """Edit a bound-slot field in closed form: in each layer, the slot a
    fact's prompt reads gets the fact's answer's codebook row, where it holds
    another one. Keys stay, unless two prompts that read one slot now need
    different answers: then each fact after the first moves to a free slot
    (value all zero, never the null slot) with its answer, and the keys are
    refitted to the frozen queries (``fit_bound_keys``) so that every fact
    reads its own slot again. The null slot, read by every other domain, is
    never written. Returns counts per layer."""
    slots = read_slots(model, f, tok, rows)
    mems = model.memory_modules()
    J = codebook_tokens(codebook)
    values = answer_values(codebook, answer_ids(tok, rows, J))
    values = values.to(next(iter(mems.values())).values.dtype)
    report, moved_any = {}, False
    with torch.no_grad():
        for li, mem in mems.items():
            s = slots[li].clone()
            N = mem.values.shape[1]
            read = set(s.tolist())
            free = [j for j in range(N) if j != null_slot(N) and j not in read and not mem.values[f, j].any()]
            owner: dict[int, int] = {}
            moved = 0
            for i in range(len(rows)):
                j = int(s[i])
                if j in owner and not torch.equal(values[owner[j]], values[i]) and free:
                    s[i] = free.pop(0)  # a second fact in this slot with another answer: its own slot
                    moved += 1
                else:
                    owner.setdefault(j, i)
            differs = (mem.values[f][s] != values).any(dim=-1)
            mem.values[f][s[differs]] = values[differs]
            slots[li] = s
            moved_any |= moved > 0
            report[str(li)] = {"facts": len(rows), "written": int(differs.sum()), "moved": moved,
                               "distinct_slots": int(s.unique().numel())}
    if moved_any:
        report["fit"] = fit_bound_keys(model, f, tok, rows, retain, slot_of=slots, log=log, answer_tokens=J)
    return report


@torch.no_grad()
def init_bound_field(model, f: int, tok, rows: list[dict], codebook: torch.Tensor, sharpness: float = 4.0) -> None:
    """A new bound-slot field: fact i in slot i, its value the answer's
    codebook row, its key along the fact's own memory query (per relation
    centred, summed over heads, normalised, scaled); other slots empty."""
    n, N = len(rows), model.config.kmm_slots_per_field
    if n > null_slot(N):
        raise ValueError(f"{n} facts do not fit in the {null_slot(N)} slots of field {model.field_names[f]!r} "
                         "(one stays empty)")
    values = answer_values(codebook, answer_ids(tok, rows, codebook_tokens(codebook)))
    queries = prompt_queries(model, tok, rows)
    memory = model.field_memory
    memory.zero(f)
    for li, mem in memory.modules.items():
        size = queries[li].norm(dim=-1).mean().clamp(min=1e-6)  # a trained model's queries are large
        q = centred_queries(queries[li], rows)
        q = q / q.norm(dim=-1, keepdim=True).clamp(min=1e-6)
        k = q.sum(dim=1)
        k = k / k.norm(dim=-1, keepdim=True).clamp(min=1e-6)
        # a query of typical size scores about ``sharpness`` x cos(query, key)
        mem.keys[f, :n] = k * sharpness * mem.key_dim ** 0.5 / size
        mem.values[f, :n] = values
    memory.set_enabled(f, True)


def phrasing_prompts(rows: list[dict], tok=None, answer_tokens: int = 1) -> tuple[list[dict], torch.Tensor]:
    """Every phrasing of every fact, cut before its answer (each is a prompt
    whose memory query must find the fact's slot), and each one's fact index;
    with ``answer_tokens`` J > 1 also cut after each of its first J - 1 answer
    tokens (those positions read the slot too)."""
    out, fact_of = [], []
    for i, (fact, row) in enumerate(zip(facts_from_rows(rows), rows)):
        ids = tok.encode(" " + row["answer"].strip(), add_special_tokens=False).ids if answer_tokens > 1 else []
        for before, _, _ in fact.sentences:
            out.append({**row, "prompt": before})
            fact_of.append(i)
            for j in range(1, min(answer_tokens, len(ids))):
                out.append({**row, "prompt": before + tok.decode(ids[:j])})
                fact_of.append(i)
    return out, torch.tensor(fact_of, dtype=torch.long)


def fit_bound_keys(model, f: int, tok, rows: list[dict], retain: list[dict], rounds: int = 3, steps: int = 300,
                   lr: float = 0.05, log=print, slot_of: dict[int, torch.Tensor] | None = None,
                   answer_tokens: int = 1) -> dict:
    """Fit field ``f``'s keys to the frozen model's own queries: fact i in
    slot i, or in ``slot_of[layer][i]``.

    With the backbone frozen, a key only has to be what the fact's prompts
    ask for: a softmax classification of the queries at the answer position
    (every phrasing of each fact -> its slot, the other domains' prompts ->
    the null slot, so the field stays silent for them), solved directly on the
    queries, without running the model per step. A layer's queries depend on
    the memory read below it, so the queries are recomputed ``rounds`` times.
    Returns the final retrieval accuracy per layer."""
    prompts, fact_of = phrasing_prompts(rows, tok, answer_tokens)
    N = model.config.kmm_slots_per_field
    nulls = torch.full((len(retain),), null_slot(N), dtype=torch.long)
    report, first = {}, {}
    for _ in range(rounds):
        queries = prompt_queries(model, tok, prompts + retain)
        for li, mem in model.memory_modules().items():
            # solved on unit-size queries (scores unchanged: keys are scaled back), so the step
            # size does not depend on how large this model's queries are
            size = queries[li].norm(dim=-1).mean().clamp(min=1e-6)
            q = queries[li].detach() / size
            keys = (mem.keys[f].detach() * size).requires_grad_(True)
            opt = torch.optim.Adam([keys], lr=lr)
            want = fact_of if slot_of is None else slot_of[li][fact_of]  # each phrasing's slot
            tgt = torch.cat([want, nulls]).repeat_interleave(mem.heads)
            # the facts' prompts and the other domains' prompts weigh the same in total
            weight = torch.cat([torch.full((len(prompts),), 0.5 / len(prompts)),
                                torch.full((len(retain),), 0.5 / max(1, len(retain)))]).repeat_interleave(mem.heads)
            for step in range(steps):
                scores = torch.einsum("mhd,nd->mhn", q, keys) / math.sqrt(mem.key_dim)
                ce = torch.nn.functional.cross_entropy(scores.reshape(-1, N), tgt, reduction="none")
                loss = (ce * weight).sum() / mem.heads
                if step == 0:
                    first.setdefault(str(li), round(float(loss.detach()), 4))
                opt.zero_grad()
                loss.backward()
                opt.step()
            with torch.no_grad():
                mem.keys[f].copy_(keys / size)
                top = (torch.einsum("mhd,nd->mhn", q, keys)).argmax(-1)
                report[str(li)] = {"loss_start": first[str(li)], "loss": round(float(loss), 4),
                                   "facts_found": round(float((top[: len(prompts)] == want[:, None]).float().mean()), 4),
                                   "others_silent": round(float((top[len(prompts):] == null_slot(N)).float().mean()), 4)}
    log(f"fit keys of field {model.field_names[f]!r}: {report}")
    return report


def train_field(
    model_dir: str | Path,
    facts: list[dict],
    field: str,
    out: str | Path | None = None,
    *,
    steps: int = 400,
    lr: float = 1e-2,
    batch_size: int = 64,
    retain_share: float = 0.5,
    retain: list[dict] | None = None,
    seed: int = 0,
    threads: int = 1,
    text_weight: float = 0.1,
    progress: bool = True,
    description: str = "",
    log=print,
    model=None,
):
    """Write field ``field`` of the model in ``model_dir`` so that it answers
    ``facts``; every other tensor stays bit-identical. Returns (Field, info);
    with ``out``, also writes the field file."""
    torch.set_num_threads(threads)
    model_dir = Path(model_dir)
    model = model if model is not None else load_model(model_dir)
    tok = load_tokenizer(model_dir)
    sp = special_ids(tok)
    memory = model.field_memory
    f = model.field_index(field)
    name = model.field_names[f]
    if retain is None:
        world = model_dir / "world.jsonl"
        retain = read_facts(world) if world.exists() else []
    taught = {r["prompt"] for r in facts}
    retain = [r for r in retain if r["prompt"] not in taught]
    codebook = model_codebook(model, model_dir)
    bound = codebook is not None
    empty = memory.is_empty(f)
    J = codebook_tokens(codebook) if bound else 1  # answer positions that read a fact's slot
    written = fitted = None
    if bound and not empty:
        written = write_edit(model, f, tok, facts, codebook, retain, log=log)  # closed form: nothing to train
        started, steps = "current (values written)", 0
    elif bound:
        init_bound_field(model, f, tok, facts, codebook)
        fitted = fit_bound_keys(model, f, tok, facts, retain, log=log, answer_tokens=J)
        started = "bound slots from queries"
    elif empty:
        init_field_from_queries(model, f, tok, facts, torch.Generator().manual_seed(seed))
        started = "queries"
    else:
        started = "current"
        memory.set_enabled(f, True)
    target_facts = facts_from_rows(facts)
    retain_facts = facts_from_rows(retain)
    enc = Encoder(tok)
    rng = random.Random(f"{seed}:field:{name}")

    for p in model.parameters():
        p.requires_grad_(False)
    # bound slots: the fitted keys stay; the steps refine the facts' values (each read by its own fact
    # only), while the null slot, read by every other domain, stays empty. The retrieval loss still
    # counts: layer 3's queries depend on what layer 1 reads from this field's values.
    pin = OneFieldTrainable(model, f, tensors=("values",) if bound else ("keys", "values"))
    null = null_slot(model.config.kmm_slots_per_field)
    opt = torch.optim.Adam(pin.params, lr=lr, betas=(0.9, 0.98), eps=1e-8)
    cfg = TrainConfig(text_weight=text_weight)
    scale = torch.ones(batch_size, len(model.field_names))
    n_retain = int(round(batch_size * retain_share)) if retain_facts else 0
    warmup = max(1, steps // 20)
    t0 = time.time()
    history = []
    model.train()
    bar = tqdm(range(steps), disable=not progress, desc=f"train-field {name}", dynamic_ncols=True)
    for step in bar:
        factor = (step + 1) / warmup if step < warmup else 0.1 + 0.9 * 0.5 * (
            1 + torch.cos(torch.tensor(torch.pi * (step - warmup) / max(1, steps - warmup))).item())
        for g in opt.param_groups:
            g["lr"] = lr * factor
        chosen = [rng.randrange(len(target_facts)) for _ in range(batch_size - n_retain)]
        seqs = [fact_sequence(enc, [target_facts[i]], f, rng, slots=[i] if bound else None, answer_tokens=J)
                for i in chosen]
        # bound slots: the other domains' prompts must read the field's empty (null) slot
        seqs += [fact_sequence(enc, [rng.choice(retain_facts)], f, rng, slots=[null] if bound else None)
                 for _ in range(n_retain)]
        opt.zero_grad(set_to_none=True)
        loss = train_micro_batches(model, seqs, scale, sp, cfg, bound=bound)
        opt.step()
        pin.restore()  # every other field stays bit-identical
        if bound:
            with torch.no_grad():
                for mem in memory.modules.values():
                    mem.values[f, null] = 0.0
        history.append(float(loss))
        bar.set_postfix(loss=f"{float(loss):.3f}")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        target_acc = evaluate_facts(model, tok, facts)
    info = {"field": name, "steps": steps, "lr": lr, "batch_size": batch_size, "retain_share": retain_share,
            "init": started, "written": written, "fitted": fitted, "seconds": round(time.time() - t0, 1),
            "loss_first": history[0] if history else None,
            "loss_last": history[-1] if history else None, "target_accuracy": target_acc["overall"]["accuracy"]}
    if history:
        log(f"train-field {name}: {steps} steps in {info['seconds']}s, loss {info['loss_first']:.3f} -> "
            f"{info['loss_last']:.3f}, accuracy on its facts {info['target_accuracy']}%")
    else:
        log(f"train-field {name}: values written in {info['seconds']}s, accuracy on its facts "
            f"{info['target_accuracy']}%")
    result: Field = model.export_field(
        f, description=description or f"field {name!r} trained on {len(facts)} facts",
        source=f"lokiserve train-field (steps={steps}, lr={lr}, init={started}, retain={len(retain)} facts)",
    )
    if out is not None:
        write_field(result, out)
    return result, info


__all__ = ["train_field", "write_edit", "init_bound_field", "fit_bound_keys", "read_slots"]
