"""Write any facts into one field of any LoKiFormer, verified before it leaves.

The general path (a converted Llama, or any answer the demo's codebook
lacks), in the order ROME/MEMIT and GRACE taught:

1. **Slots.** Each new fact takes one empty slot of the field (key 0, value
   0); the slots earlier writes filled stay, so edits accumulate (lifelong
   editing). Empty slots are the null slot: they score 0 everywhere.
2. **Keys** (``routing``): per fact, a linear classifier on the frozen
   model's memory queries in the first KMM layer (whose queries no field
   can move): positive where the fact's subject ends (its prompt, the
   given paraphrases, the subject in neutral contexts), negative at every
   other position of every text the writer has.
3. **Values** (``values``): gradient steps on the answer's likelihood through
   the frozen layers above, with the keys in place.
4. **Verify** (``verify``): efficacy, paraphrases, neighbours, retain facts,
   unrelated text, against the model before the write. The field is
   returned with its report; the caller decides (``passed``, ``--force``).

On a bound-slot model (the demo) an edit keeps the model's own routing (the
slot each prompt reads), stores the answer's codebook value there first
(``codebook_values``: exact where the codebook lists the whole answer) and
solves the values from there, the end of the answer's word a target too.

Only field ``f`` changes while this runs, and it is restored before
returning: the model is left exactly as it was.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field

import torch

from lokiserve.edit.contexts import subject_contexts, unrelated_split
from lokiserve.edit.encoding import Codec, Sequence
from lokiserve.edit.facts import Fact, FactsError
from lokiserve.edit.queries import all_queries, answer_argmax
from lokiserve.edit.routing import RoutingConfig, fit_keys
from lokiserve.edit.values import WORD_END, ValueConfig, owned_slots, solve_values
from lokiserve.edit.verify import Probe, Thresholds, probe, verify
from lokiserve.memory import Field


MAX_KEEP = 2000  # retain facts held in place per write beyond the verification's sample


@dataclass
class WriteOptions:
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    values: ValueConfig = field(default_factory=ValueConfig)
    thresholds: Thresholds = field(default_factory=Thresholds)
    max_retain: int = 400  # retain facts used as negatives and measured (a deterministic sample)
    # The next-token distribution on English text the project wrote (``contexts.UNRELATED``): what a real
    # model must keep. Off for a model trained only on a synthetic world (the demo), for which that text
    # is noise; its locality is its retain facts, per domain.
    unrelated_text: bool = True
    # Continuation slots: a multi-token answer gets one more slot per token after its first, keyed at the
    # answer's own positions, so that each answer token is read, not left to the backbone to continue.
    # Off by default: a real model continues an answer by itself from the value read at the subject, and
    # on the first bound-slot demo (one codebook token per slot) they did not help (48 edits, 16 new names of 1-4
    # tokens: 12.5% with and without); the shipped demo reads every answer token from the fact's own slot.
    continuation: bool = False
    # The KMM layer continuation keys live in (None: the first, where the fact keys are: its queries do
    # not move while values are solved). Measured on the first bound-slot demo (48 edits, 16 new names): first
    # layer 0 of 24 continuation keys separated, new names 12.5%, other answers 100%; last layer 4 of 24,
    # new names 12.5%, other answers 93.8-100%.
    continuation_layer: int | None = None


@dataclass
class WriteResult:
    field: Field
    report: dict

    @property
    def passed(self) -> bool:
        return bool(self.report.get("passed"))


def model_codebook_of(model) -> torch.Tensor | None:
    """The value codebook beside a bound-slot model's weights (the folder it
    was loaded from: ``bound_slots.model_codebook``), or None for a model
    without one or not loaded from a folder."""
    from lokiserve.train.bound_slots import model_codebook

    folder = getattr(model, "name_or_path", "")
    try:
        return model_codebook(model, folder) if folder else None
    except FileNotFoundError:  # a bound-slot model without its codebook: no closed form, the solve does it all
        return None


@torch.no_grad()
def codebook_values(model, f: int, answers: list[tuple[int, ...]], slots: dict[int, torch.Tensor]) -> int:
    """A bound-slot edit in closed form where the model's codebook lists the
    whole answer (a codebook of J answer tokens, an answer of at most J): the
    slot each prompt reads gets the answer's codebook value, as training
    stored every answer. The value solve then starts there (facts it already
    answers leave at once) and takes what the codebook cannot say.
    ``answers[i]``: fact i's answer tokens after its prompt. Returns how many
    facts were written."""
    from lokiserve.train.bound_slots import answer_values, codebook_tokens

    codebook = model_codebook_of(model)
    if codebook is None or codebook_tokens(codebook) == 1:
        return 0  # one token: a longer answer was spelled by the backbone from its answer sets
    J = codebook_tokens(codebook)
    mems = model.memory_modules()
    n = 0
    for i, answer in enumerate(answers):
        ids = list(answer)
        if len(ids) > J:
            continue
        value = answer_values(codebook, torch.tensor(ids + [-1] * (J - len(ids))))
        for li, s in slots.items():
            mems[li].values[f, s[i]] = value.to(mems[li].values.dtype)
        n += 1
    return n


def free_slots(model, f: int, value_only: bool = False) -> torch.Tensor:
    """Slots of field ``f`` that are empty in every KMM layer (key and value
    0). ``value_only``: a bound-slot model's spare slots, whose keys were
    trained but whose values are 0 (they store nothing, whatever reads them)."""
    used = None
    for mem in model.memory_modules().values():
        u = (mem.values[f] != 0).any(-1)
        if not value_only:
            u = u | (mem.keys[f] != 0).any(-1)
        used = u if used is None else used | u
    return (~used).nonzero().flatten()


def _sample(rows: list, n: int) -> list:
    if len(rows) <= n:
        return list(rows)
    step = len(rows) / n
    return [rows[int(i * step)] for i in range(n)]


class _Texts:
    """Every sequence the writer reads queries from, with its role."""

    def __init__(self):
        self.seqs: list[Sequence] = []
        self.texts: list[str] = []

    def add(self, seq: Sequence, text: str) -> int:
        self.seqs.append(seq)
        self.texts.append(text)
        return len(self.seqs) - 1


@dataclass
class Checks:
    """The sequences a write is verified on (see ``verify``)."""

    prompts: list[Sequence]
    given: list[Sequence]
    held_out: list[Sequence]
    neighbors: list[Sequence]
    retain: list[Sequence]
    retain_rows: list[dict]
    unrelated: list[tuple[int, ...]]

    def probe(self, model) -> Probe:
        return probe(model, self.neighbors, self.retain, [r.get("domain", "retain") for r in self.retain_rows],
                     self.unrelated)

    def verify(self, model, codec: Codec, before: Probe, thresholds: Thresholds) -> dict:
        return verify(model, codec, before, prompts=self.prompts, given=self.given, held_out=self.held_out,
                      neighbors=self.neighbors, retain=self.retain, unrelated=self.unrelated, thresholds=thresholds)


def build_checks(codec: Codec, facts: list[Fact], retain: list[dict] | None, held_out, max_retain: int,
                 unrelated_text: bool = True) -> Checks:
    taught = {fa.prompt for fa in facts}
    # Rows marked "held" (``lokiserve edit --hold``: earlier edits of this field) are always measured and held;
    # the rest is a deterministic sample.
    held = [r for r in (retain or []) if r.get("held") and r["prompt"] not in taught]
    rest = [r for r in (retain or []) if not r.get("held") and r["prompt"] not in taught]
    retain_rows = held + _sample(rest, max(0, max_retain - len(held)))
    return Checks(
        prompts=[codec.sequence(fa.prompt, fa.answer, fa.subject) for fa in facts],
        given=[codec.sequence(p, fa.answer, fa.subject) for fa in facts for p in fa.paraphrases],
        held_out=[codec.sequence(p, a, s) for p, a, s in (held_out or [])],
        neighbors=[codec.sequence(n.prompt, n.answer) for fa in facts for n in fa.neighbors],
        retain=[codec.sequence(r["prompt"], r["answer"]) for r in retain_rows],
        retain_rows=retain_rows,
        unrelated=[codec.sequence(t, None).ids for t in unrelated_split()[1]] if unrelated_text else [],
    )


def verify_field(model, codec: Codec, field_id, candidate: Field, facts: list[Fact], *,
                 retain: list[dict] | None = None, held_out=None, options: WriteOptions | None = None) -> dict:
    """The verification report of a field written by any method (the demo's
    closed form included): measured with ``candidate`` in place, against the
    model as it is; the model is restored afterwards."""
    opts = options or WriteOptions()
    memory = model.field_memory
    f = model.field_index(field_id)
    checks = build_checks(codec, facts, retain, held_out, opts.max_retain, opts.unrelated_text)
    state = memory.snapshot([f])
    enabled = bool(next(iter(memory.modules.values())).enabled[f])
    before = checks.probe(model)
    try:
        model.apply_field(f, candidate)
        with torch.no_grad():
            return checks.verify(model, codec, before, opts.thresholds)
    finally:
        memory.restore(state)
        memory.set_enabled(f, enabled)


def write_facts(model, codec: Codec, field_id, facts: list[Fact], *, retain: list[dict] | None = None,
                held_out: list[tuple[str, str, str | None]] | None = None, options: WriteOptions | None = None,
                description: str = "", log=print) -> WriteResult:
    """Write ``facts`` into field ``field_id``; ``retain``: rows {prompt,
    answer} that must not change; ``held_out``: (prompt, answer, subject)
    paraphrases the writer does not see, measured only. Returns the field
    (with its report in the metadata) and the report."""
    opts = options or WriteOptions()
    t0 = time.time()
    memory = model.field_memory
    f = model.field_index(field_id)
    name = model.field_names[f]
    route_layer = min(model.memory_modules())
    # A bound-slot model (the demo) already routes each of its facts' prompts to that fact's slot:
    # an edit keeps those keys and solves only the values there (any answer, not just codebook rows).
    unit_layer = opts.continuation_layer if opts.continuation_layer is not None else route_layer
    if unit_layer not in model.memory_modules():
        raise FactsError(f"continuation layer {unit_layer} is not a KMM layer ({sorted(model.memory_modules())})")
    codebook_model = getattr(model.config, "kmm_value_codebook", None) is not None
    bound = codebook_model and not memory.is_empty(f)
    free = free_slots(model, f, value_only=bound)
    if codebook_model:  # the bound-slot scheme's null slot is never a fact's
        from lokiserve.train.bound_slots import null_slot

        free = free[free != null_slot(next(iter(memory.modules.values())).keys.shape[1])]
    if bound:
        from lokiserve.train.field_training import read_slots  # the demo's own routing

        bound_slots = read_slots(model, f, codec.tok, [fa.as_row() for fa in facts])
    before_state = memory.snapshot([f])
    was_enabled = bool(next(iter(memory.modules.values())).enabled[f])

    # ---- sequences
    texts = _Texts()
    write_idx, owners, prompt_rows = [], [], []
    positives: list[list[tuple[int, int]]] = [[] for _ in facts]  # (text index, position)
    for i, fa in enumerate(facts):
        for j, p in enumerate((fa.prompt,) + fa.paraphrases):
            s = codec.sequence(p, fa.answer, fa.subject)
            k = texts.add(s, p)
            if j == 0:
                prompt_rows.append(len(write_idx))
            write_idx.append(k)
            owners.append(i)
            if s.read_at > 0:  # position 0 of a BOS-less model is the attention sink: never a key
                positives[i].append((k, s.read_at))
        if fa.subject is not None:
            for c in subject_contexts(fa.subject):
                s = codec.sequence(c, None, fa.subject)
                positives[i].append((texts.add(s, c), s.read_at))
    # Refused before any forward pass: a prompt of one token on a model without BOS (a subject that opens a
    # longer prompt is read at the next token, ``Codec.sequence``).
    unread = next((i for i, p in enumerate(positives) if not p), None)
    if not bound and unread is not None:
        raise FactsError(f"fact {unread + 1} ({facts[unread].prompt!r}) has no position to read it at: its prompt "
                         "is one token long, and position 0 of a model without BOS (the attention sink) is never "
                         "read; give a longer prompt")
    units = continuation_units(texts, write_idx, owners) if opts.continuation else []
    needed = len(units) + (0 if bound else len(facts))
    if len(free) < needed:
        raise FactsError(f"field {name!r} has {len(free)} empty slots; {len(facts)} facts need {needed} "
                         f"(zero it, or write into another field)")
    fact_slots = None if bound else free[: len(facts)]
    unit_slots = free[needed - len(units): needed]
    checks = build_checks(codec, facts, retain, held_out, opts.max_retain, opts.unrelated_text)
    neighbors, retain_rows, retain_seqs = checks.neighbors, checks.retain_rows, checks.retain
    for s, n in zip(neighbors, [n for fa in facts for n in fa.neighbors]):
        texts.add(s, n.prompt)
    for s, r in zip(retain_seqs, retain_rows):
        texts.add(s, r["prompt"])
    for t in unrelated_split()[0] if opts.unrelated_text else []:
        texts.add(codec.sequence(t, None), t)

    # ---- what the model does before the write (field f as it is now)
    before: Probe = checks.probe(model)

    routed = ([] if bound else facts)
    if routed or units:
        # On a bound-slot model every slot of the field has a trained key: a continuation key competes with
        # them, not with empty slots scoring 0.
        rivals = None
        if bound and units:
            keep = torch.ones(model.memory_modules()[unit_layer].keys.shape[1], dtype=torch.bool)
            keep[unit_slots] = False
            rivals = model.memory_modules()[unit_layer].keys[f, keep].detach().float()
        keys, fit, t_keys = _fit(model, codec, routed, texts, positives if routed else [], units, route_layer,
                                 unit_layer, opts, name, t0, log, rivals)
    else:
        keys, fit, t_keys = None, {}, 0.0
    if bound:
        fit["routing"] = "bound slots (the model's own)" + (f", {len(units)} continuation keys" if units else "")

    # ---- keep sequences: retain facts that mention an edited subject (prompt or answer) must not move. All
    # of them, not only the verification's sample: in lifelong editing the earlier edits of a subject are among
    # them (measured on the demo, 100 sequential edits: with the sample alone 82% of the first 50 edits held).
    subjects = [(i, fa.subject) for i, fa in enumerate(facts) if fa.subject]
    taught, sampled = {fa.prompt for fa in facts}, {r["prompt"] for r in retain_rows}
    extra_rows = [r for r in (retain or []) if r["prompt"] not in taught and r["prompt"] not in sampled
                  and any(subj in f"{r['prompt']} {r['answer']}" for _, subj in subjects)][:MAX_KEEP]
    extra_seqs = [codec.sequence(r["prompt"], r["answer"]) for r in extra_rows]
    with torch.no_grad():
        extra_pred = answer_argmax(model, extra_seqs)

    # ---- values
    try:
        with torch.no_grad():
            # Free slots hold value 0 in every layer (and key 0 too, unless a bound-slot model's spares,
            # whose keys in other layers stay as trained): a key goes into its own layer only.
            n_fact_keys = 0 if fact_slots is None else len(fact_slots)
            mems = model.memory_modules()
            if n_fact_keys:
                mems[route_layer].keys[f, fact_slots] = keys[:n_fact_keys]
            if len(units):
                mems[unit_layer].keys[f, unit_slots] = keys[n_fact_keys:]
            memory.set_enabled(f, True)
        owned = owned_slots(bound_slots if bound else {route_layer: fact_slots})
        written = codebook_values(model, f, [texts.seqs[write_idx[r]].answer for r in prompt_rows],
                                  bound_slots) if bound else 0
        if bound:
            fit["codebook_values"] = written
        owned.setdefault(unit_layer, [torch.zeros(0, dtype=torch.long) for _ in facts])
        for (i, _j, _pos), slot in zip(units, unit_slots):  # continuation values live where their keys are
            owned[unit_layer][i] = torch.cat([owned[unit_layer][i], slot.view(1)])
        seqs = [texts.seqs[k] for k in write_idx]
        # On the demo a name is spelled from word pieces, and the backbone would as readily add one more:
        # its end is a target too (verification's greedy answer must end where the answer does).
        targets = [tuple(s.answer) + ((WORD_END,) if bound else ()) for s in seqs]
        keep_owners = list(owners)
        # Fitted keys fire where a subject ends, so one subject's facts are read together; the demo's
        # bound slots are read one per prompt.
        by_subject: dict[str, int] = {}
        group_of = [i if bound else by_subject.setdefault(fa.subject or f"#{i}", i) for i, fa in enumerate(facts)]
        kept = set()
        for s, pred in zip(retain_seqs + extra_seqs + neighbors, before.retain + extra_pred + before.neighbors):
            # The answer counts as much as the prompt: a key fires where its subject ends, and an answer
            # that is an edited subject ("The capital of Scotland is Edinburgh") reads it right before the
            # token after the answer, which is compared too (1,000 SmolLM2 edits: every neighbour and retain
            # fact that moved had only that token moved, "." to ","). One copy of each text: 2,058 neighbour
            # and retain texts of the 1,000 edits are 107 distinct ones.
            hits = keep_dependents(codec.decode(s.ids), subjects) if s.ids not in kept else []
            if hits:
                kept.add(s.ids)
                seqs.append(s)
                targets.append(tuple(int(t) for t in pred))  # the answer span and the token after, as verified
                keep_owners.append(hits[0])
                # Every fact it mentions can move it: their groups stay in play together until it holds.
                roots = {group_of[i] for i in hits}
                if len(roots) > 1:
                    group_of = [min(roots) if g in roots else g for g in group_of]
        # The demo's small backbone needs many more, larger steps to reach a value outside its codebook
        # (measured: 40 steps at lr 0.5 solved 21 of 48 edits, 200 at lr 1.0 solved 19 of 20 one-token ones).
        vcfg = dataclasses.replace(opts.values, steps=max(opts.values.steps, 200), lr=max(opts.values.lr, 1.0)) \
            if bound else opts.values
        t_solve = time.time()

        def progress(step, live, loss):  # a long solve says how far it is
            if step % 10 == 9:
                log(f"edit {name}: value step {step + 1}, {live} of {len(facts)} facts still in play, "
                    f"loss {loss:.3f}, {time.time() - t_solve:.0f}s")
        # The general path solves on the facts' own prompts first (about half of the tokens); the demo's
        # bound slots are read one per prompt, so a paraphrase is its own problem there.
        solved = solve_values(model, f, owned, seqs, keep_owners, vcfg, targets, groups=group_of, progress=progress,
                              first=None if bound else prompt_rows,
                              keep=[False] * len(write_idx) + [True] * (len(seqs) - len(write_idx)),
                              continues=codec.continues_word() if bound else None)
        t_values = time.time() - t0 - t_keys
        log(f"edit {name}: values in {t_values:.1f}s ({solved['steps']} steps, {solved['unsolved']} unsolved)")
        with torch.no_grad():
            report = checks.verify(model, codec, before, opts.thresholds)
        report.update({"field": name, "method": "fitted keys + solved values", "routing_layer": route_layer, "slots_used": int(len(torch.cat([t for v in owned.values() for t in v]).unique())),
                       "continuation_slots": len(units),
                       "keys": fit, "values": solved,
                       "seconds_keys": round(t_keys, 1), "seconds_values": round(t_values, 1),
                       "seconds": round(time.time() - t0, 1), "seconds_per_fact": round((time.time() - t0) / len(facts), 3)})
        result = model.export_field(
            f, description=description or f"{len(facts)} facts written by lokiserve edit",
            source=f"lokiserve edit (general path: fitted keys at layer {route_layer}, solved values)",
            report=json.dumps(report, separators=(",", ":")),
        )
    finally:
        memory.restore(before_state)
        memory.set_enabled(f, was_enabled)
    return WriteResult(result, report)


def _mentions(text: str, subject: str) -> list[tuple[int, bool]]:
    """Where ``subject`` ends in ``text``, and whether as a whole word
    (non-overlapping, left to right, as ``re.finditer`` finds them). A plain
    scan: at 1,000 edits this runs ~15 million times, and compiling or
    looking up a regex per call took about 50 s of the key phase under the
    profiler."""
    out = []
    if not subject:
        return out
    start = text.find(subject)
    while start >= 0:
        end = start + len(subject)
        whole = (start == 0 or not text[start - 1].isalnum()) and (end == len(text) or not text[end].isalnum())
        out.append((end, whole))
        start = text.find(subject, end)
    return out


def keep_dependents(text: str, subjects: list[tuple[int, str]]) -> list[int]:
    """The facts whose values a text that mentions their subjects can read,
    the one it reads at its end first (the subject that ends last, the
    longest of those ending together): a whole-word mention is read where it
    ends; a subject inside a longer word ("Niger" in "Nigeria", "tin" in
    "Argentina") may fire there too, so it depends on it, but it does not
    own the text. Owning by the first substring found held "The capital of
    Nigeria is" with the edit of Niger's, and "...of Argentina is" with tin's:
    once those were solved and frozen, the text left the solve while
    Argentina's and Nigeria's own edits still moved (a flaw found by reading;
    it was not what moved the three capitals the 1,000-edit run lost: those
    moved the token after their answer, see the keep loop)."""
    found = [(whole, end, len(subj), i) for i, subj in subjects for end, whole in _mentions(text, subj)]
    found.sort(key=lambda t: (not t[0], -t[1], -t[2]))
    return list(dict.fromkeys(i for *_, i in found))


def continuation_units(texts: _Texts, write_idx: list[int], owners: list[int]) -> list[tuple[int, int, list]]:
    """(fact, j, positives) for each answer token j >= 1 of a multi-token
    answer: its key fires where answer token j-1 stands, in the prompt and
    every given paraphrase (a paraphrase whose answer encodes shorter has no
    such position)."""
    by_fact: dict[int, list[int]] = {}
    for k, i in zip(write_idx, owners):
        by_fact.setdefault(i, []).append(k)
    units = []
    for i, ks in sorted(by_fact.items()):
        longest = max(len(texts.seqs[k].answer) for k in ks)
        for j in range(1, longest):
            pos = [(k, texts.seqs[k].answer_start - 1 + j) for k in ks if j < len(texts.seqs[k].answer)]
            units.append((i, j, pos))
    return units


def _fit(model, codec, facts, texts, positives, units, route_layer, unit_layer, opts, name, t0, log,
         unit_rivals: torch.Tensor | None = None):
    """Fitted keys (``routing.fit_keys``): one per fact, read at its subject
    in the first KMM layer, then one per continuation unit in
    ``unit_layer``, in that order. ``unit_rivals``: the trained keys a
    continuation key competes with in its layer (a bound-slot field's)."""
    layers = sorted({route_layer, unit_layer} if units else {route_layer})
    queries, starts = all_queries(model, [s.ids for s in texts.seqs], layers=layers)
    pos_rows = [torch.tensor([starts[k] + t for k, t in p], dtype=torch.long) for p in positives]
    excluded = [torch.cat([e, p]).unique() for e, p in zip(_subject_rows(facts, texts, starts, codec), pos_rows)]
    # A continuation key may also fire where another fact's answer has the same tokens so far and next:
    # both read the same next token there, so that is not a leak.
    unit_rows = [torch.tensor([starts[k] + t for k, t in pos], dtype=torch.long) for _, _, pos in units]
    same: dict[tuple, list[torch.Tensor]] = {}
    for (i, j, pos), rows in zip(units, unit_rows):
        same.setdefault(texts.seqs[pos[0][0]].answer[: j + 1], []).append(rows)
    unit_excluded = [torch.cat(same[texts.seqs[pos[0][0]].answer[: j + 1]]).unique() for (i, j, pos) in units]
    parts, fit = [], {"facts": 0, "separated": 0}
    if pos_rows:
        k, stats = fit_keys(queries[route_layer], pos_rows, excluded, opts.routing)
        stats.pop("per_fact")
        parts.append(k)
        fit.update(stats)
    if unit_rows:
        rivals = None
        if unit_rivals is not None:
            q = queries[unit_layer]
            top = (torch.einsum("mhd,nd->mhn", q, unit_rivals) / math.sqrt(q.shape[-1])).topk(
                min(model.memory_modules()[unit_layer].topk, len(unit_rivals)), dim=-1).values
            rivals = (top[..., 0], top[..., -1])
        k, stats = fit_keys(queries[unit_layer], unit_rows, unit_excluded, opts.routing, rivals)
        stats.pop("per_fact")
        parts.append(k)
        fit["continuation"] = {"layer": unit_layer, **stats}
    keys = torch.cat(parts)
    t_keys = time.time() - t0
    cont = fit.get("continuation", {})
    more = f", {len(units)} continuations in layer {unit_layer} ({cont.get('separated', 0)} separated)" if units else ""
    log(f"edit {name}: keys for {len(facts)} facts in layer {route_layer} ({fit['separated']} separated){more} "
        f"in {t_keys:.1f}s")
    return keys, fit, t_keys


def _subject_rows(facts: list[Fact], texts: _Texts, starts: list[int], codec: Codec) -> list[torch.Tensor]:
    """For each fact, every query row where its subject ends in any text:
    reading the fact there is the intent (ROME's subject key), not a leak."""
    by_subject: dict[str, list[int]] = {}
    for s in {fa.subject for fa in facts if fa.subject}:
        rows = []
        for k, t in enumerate(texts.texts):
            # a whole word only: "tin" ends inside "Argentina" too, and its key was then free to fire where
            # "The capital of Argentina is" is read
            if any(whole for _, whole in _mentions(t, s)):
                rows.append(starts[k] + codec.sequence(t, None, s).read_at)
        by_subject[s] = rows
    out = []
    for i, fa in enumerate(facts):
        rows = list(by_subject.get(fa.subject, [])) if fa.subject else []
        out.append(torch.tensor(sorted(set(rows)), dtype=torch.long))
    return out


__all__ = ["WriteOptions", "WriteResult", "write_facts", "verify_field", "build_checks", "free_slots",
           "continuation_units"]
