"""Values that make the model say the new answer (ROME's value solve, stored).

A KMM value is directly a residual update (``W_mo`` times the retrieved
values), so a fact's value is solved as ROME/MEMIT solve their residual
vector: gradient steps on the answer's log-likelihood through the frozen
layers above, with the fitted keys in place, so the solve sees exactly the
routing the served model will apply. Only the fact slots of one field
receive updates; every other slot, field and weight is restored after each
step (bit-identical). Facts whose answers already win by a margin leave the
active set, so the cost falls as the solve converges. The prefix of each
sequence that no solved slot is read in runs once (``prefix``): steps run
only the rest, batched by suffix length, and no further than the last
position whose prediction is a target. Where the CPU multiplies bf16
natively (AMX, or AVX512-BF16), steps run in bf16 autocast first; fp32, the
precision the model is served and verified in, then judges every sequence
and finishes the ones bf16 left short. With ``first`` (the facts' own
prompts), the first steps run on those alone, about half of the tokens,
until most facts are solved there; then every sequence is judged and the
facts still short on any of them go on.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from lokiserve.edit.encoding import Sequence
from lokiserve.edit.prefix import Packs, unread_prefix
from lokiserve.edit.routing import native_bf16
from lokiserve.model import LoKiFormerForCausalLM


@dataclass
class ValueConfig:
    steps: int = 40
    # Adam's step. Measured on SmolLM2, 100 real edits in one field: lr 0.5 -> values in 178 s, efficacy 0.98,
    # held-out paraphrases 0.94; 1.0 -> 151 s, 0.99, 0.96; 2.0 -> 122 s, 0.98, 0.96; locality 1.0 in all three.
    lr: float = 1.0
    done_logprob: float = -0.4  # a sequence is solved when every answer token has log p above this
    # A keep sequence (its targets are what the model predicted before the write) is solved when each target
    # is still the argmax with log p no lower than at the solve's start less this, or above ``done_logprob``:
    # it must stay as it was, not grow surer than the model ever was (300 real edits: 31 of 32 keep sequences
    # were below -0.4 after the prompt phase, 9 facts in play for them alone).
    keep_slack: float = 0.1
    tokens_per_batch: int = 8192  # padded tokens, stored prefix and stepped suffix together, per batch
    max_norm: float | None = None  # cap on each slot's value norm (None: no cap)
    # Steps in bf16 autocast where the CPU multiplies bf16 natively (None: auto; False: never), then up to
    # ``finish_steps`` more in fp32 for the facts fp32 finds unsolved. Measured on SmolLM2, 1,000 edits
    # (AVX512-BF16, no AMX): 20 fp32 finish steps took 150 s and took the facts in play only from 50 to 34
    # (efficacy 0.967 after them); with 10 (and the prompt phase) the run gave 0.97.
    bf16: bool | None = None
    finish_steps: int = 10
    # With ``first`` given to ``solve_values``: the first steps run on those sequences alone until at most
    # this fraction of the facts is still in play there (or half of ``steps`` has run).
    first_until: float = 0.2


# A target after an answer's tokens: its word ends there (the next token does not continue it).
WORD_END = -1


def fast_dtype(cfg: ValueConfig):
    """bf16 where it is fast (a CPU with AMX tiles) unless the config says
    otherwise; None: solve in the model's own precision throughout."""
    if cfg.bf16 is False:
        return None
    # AVX512-BF16 (e.g. AMD Zen 4): bf16 matmuls 2.3x fp32's rate on this project's 2-core CI machine
    native = native_bf16()  # (which also grants this process AMX where the CPU has it, forced or not)
    if cfg.bf16 is None and not native:
        return None
    return torch.bfloat16


@contextlib.contextmanager
def linears_in(model: LoKiFormerForCausalLM, dtype):
    """Every frozen linear's weight in ``dtype`` for the duration, restored
    (the same tensors) after: autocast alone casts each weight at each call,
    a fifth of a bf16 step. The embedding (a tied LM head's too), norms,
    convolutions and memory keys and values stay as they are, so the
    residual stream stays fp32."""
    if dtype is None:
        yield contextlib.nullcontext
        return
    embed = model.get_input_embeddings().weight
    saved = [(m.weight, m.weight.data) for m in model.modules()
             if isinstance(m, torch.nn.Linear) and m.weight is not embed and not m.weight.requires_grad]
    low = [data.to(dtype) for _, data in saved]

    @contextlib.contextmanager
    def exact():
        """The model's own weights back for a while (state that later fp32
        steps reuse is computed in fp32)."""
        for p, data in saved:
            p.data = data
        try:
            yield
        finally:
            for (p, _), data in zip(saved, low):
                p.data = data
    try:
        for (p, _), data in zip(saved, low):
            p.data = data
        yield exact
    finally:
        for p, data in saved:
            p.data = data


def owned_slots(slots: dict[int, torch.Tensor]) -> dict[int, list[torch.Tensor]]:
    """One slot per fact per layer (``slots[layer][i]``) as ``solve_values``'s
    per-fact slot lists."""
    return {li: [s.view(1) for s in t] for li, t in slots.items()}


def solve_values(model: LoKiFormerForCausalLM, f: int, owned: dict[int, list[torch.Tensor]], seqs: list[Sequence],
                 owners: list[int], cfg: ValueConfig, targets: list[tuple[int, ...]] | None = None,
                 groups: list[int] | None = None, progress=None, first: list[int] | None = None,
                 keep: list[bool] | None = None, continues: torch.Tensor | None = None) -> dict:
    """Fit field ``f``'s values at ``owned[layer][i]`` (the slots fact ``i``
    owns in each KMM layer that routes facts: its read slot, and for a
    multi-token answer its continuation slots), so that each sequence
    produces its target tokens after the prompt (default: its answer; a
    *keep* sequence, a retain fact that mentions an edited subject, targets
    what the model said before the edit). Keys must already be in place and
    the field enabled; slots in other layers keep key 0 and value 0 (empty).

    ``groups[i]``: facts with the same group are read together (one subject's
    facts, keyed at the same position: each prompt reads the mix of all their
    values) and stay in play together. Freezing one of them once solved while
    its group-mates kept moving undid it (measured on SmolLM2, 100 edits: the
    capital and currency of Mexico, the capital of Chile, the language of
    Syria, each solved and then lost).

    ``first``: sequence indices solved alone first (see the module's doc).
    ``keep[i]``: sequence ``i``'s targets are the model's own predictions
    (``ValueConfig.keep_slack``).

    A target ``WORD_END`` (after the answer's tokens) asks that the answer's
    word end there, as verification requires: its log p is the mass of the
    tokens that do not continue a word (``continues``: per vocabulary id,
    whether it glues onto the word before), and the argmax must be one."""
    targets = targets or [s.answer for s in seqs]
    if continues is None and any(WORD_END in t for t in targets):
        raise ValueError("a WORD_END target needs ``continues``")
    # Each sequence only as far as its last target is predicted: a fact's last answer token is an input
    # no target is read from (1 of ~6 suffix tokens per real fact).
    seqs = [Sequence(s.ids[: s.answer_start - 1 + len(t)], s.answer_start, s.read_at) for s, t in zip(seqs, targets)]
    layers = sorted(owned)
    n_facts = len(owned[layers[0]])

    def slots_of(li: int, facts) -> torch.Tensor:
        parts = [owned[li][i] for i in facts]
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)
    mems = [model.memory_modules()[li] for li in layers]
    params = [m.values for m in mems]
    saved = [p.detach().clone() for p in params]
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=cfg.lr)
    masks = []
    for li in layers:
        m = torch.zeros(params[0].shape[:2], dtype=torch.bool)
        m[f, slots_of(li, range(n_facts))] = True  # the only entries that may change
        masks.append(m)
    prefix = unread_prefix(model, f, {li: slots_of(li, range(n_facts)) for li in layers}, seqs)
    packs = Packs(model, seqs, prefix, layers[0], cfg.tokens_per_batch)
    exact = contextlib.nullcontext  # within a bf16 phase: the context that puts the model's own weights back
    owner_t = torch.tensor(owners)
    group_of = list(groups) if groups is not None else list(range(n_facts))

    floor = torch.full((len(seqs),), cfg.done_logprob)

    def evaluate(live_seqs: set[int], grad: bool, dtype, raw: bool = False) -> tuple[torch.Tensor, float]:
        """Per sequence, how far its worst answer token's log p is above
        its floor, -inf where a target is not the argmax (0 for sequences
        not in ``live_seqs``; ``raw``: the log p itself); with ``grad``, the
        loss's gradient accumulates in the values. ``dtype``: autocast's
        (None: the model's own, fp32)."""
        worst = torch.full((len(seqs),), 0.0)
        total = 0.0
        with exact():  # batches built now are reused in fp32: their stored prefixes are computed in fp32
            runs = packs.runs(live_seqs)
        cast = torch.autocast("cpu", dtype=dtype) if dtype is not None else contextlib.nullcontext()
        head = model.lm_head.weight if dtype is None else model.lm_head.weight.to(dtype)
        with cast, torch.set_grad_enabled(grad):
            for chunk, run in runs:
                rows = [r for r, i in enumerate(chunk) if i in live_seqs]
                if not rows:
                    continue
                hidden = run.forward(rows)
                # Every target position of the batch through the LM head at once (per row, the head's
                # small matmuls and vocabulary-wide softmaxes cost as much as the layers).
                row_of, pos, tgt = [], [], []
                for row, r in enumerate(rows):
                    i = chunk[r]
                    at = seqs[i].answer_start - 1 - prefix[i]  # in suffix coordinates
                    # the target may run one token past the answer (a keep sequence: what followed it too)
                    row_of += [row] * len(targets[i])
                    pos += range(at, at + len(targets[i]))
                    tgt += targets[i]
                row_t = torch.tensor(row_of)
                logits = torch.nn.functional.linear(hidden[row_t, torch.tensor(pos)].to(head.dtype), head).float()
                tgt_t = torch.tensor(tgt)
                logp_all = torch.log_softmax(logits, -1)
                logp = logp_all.gather(1, tgt_t.clamp(min=0).view(-1, 1)).squeeze(1)
                end = tgt_t == WORD_END
                top = logits.detach().argmax(-1)
                wrong = top != tgt_t
                if end.any():
                    logp = torch.where(end, torch.logsumexp(logp_all[:, ~continues], -1), logp)
                    wrong = torch.where(end, continues[top], wrong)
                seq_t = torch.tensor([chunk[r] for r in rows])
                margin = logp.detach() - (0.0 if raw else floor[seq_t][row_t])
                if not raw:
                    margin = margin.masked_fill(wrong, -float("inf"))
                low = torch.full((len(rows),), float("inf")).scatter_reduce(0, row_t, margin, "amin")
                worst[seq_t] = low
                if grad:
                    counts = torch.bincount(row_t, minlength=len(rows)).float()
                    loss = -(torch.zeros(len(rows)).index_add(0, row_t, logp) / counts).sum()
                    loss.backward()
                    total += float(loss.detach())
        return worst, total

    def live_facts(worst: torch.Tensor, candidates) -> set[int]:
        """Facts still in play: a fact stays while any sequence of its group
        is unsolved."""
        still = [i for i in candidates if worst[i] < 0]
        live_groups = set(group_of[int(owner_t[i])] for i in still)
        return set(i for i in range(n_facts) if group_of[i] in live_groups)

    def step(active: list[int], dtype) -> tuple[list[int], set[int], float]:
        """One Adam step on the active sequences' facts; returns the sequences
        still active, the facts still live and the mean loss."""
        opt.zero_grad(set_to_none=True)
        worst, total = evaluate(set(active), True, dtype)
        live = live_facts(worst, active)
        for p, li, m in zip(params, layers, masks):
            if p.grad is not None:
                live_rows = torch.zeros_like(m)
                live_rows[f, slots_of(li, sorted(live))] = True
                p.grad[~(m & live_rows)] = 0
        prev = [p.detach().clone() for p in params]
        if live:
            opt.step()
        with torch.no_grad():
            done = sorted(set(range(n_facts)) - live)
            for p, s, m, li, pr in zip(params, saved, masks, layers, prev):
                p[~m] = s[~m]
                if done:  # a solved fact stays put (Adam's momentum would move it on)
                    frozen = slots_of(li, done)
                    p[f, frozen] = pr[f, frozen]
                if cfg.max_norm is not None:
                    every = slots_of(li, range(n_facts))
                    v = p[f, every]
                    p[f, every] = v * (cfg.max_norm / v.norm(dim=-1, keepdim=True).clamp(min=cfg.max_norm))
        return [i for i in active if int(owner_t[i]) in live], live, total / len(active)

    if keep is not None and any(keep):
        kept = [i for i, k in enumerate(keep) if k]
        at_start, _ = evaluate(set(kept), False, None, raw=True)
        floor[kept] = torch.minimum(floor[kept], at_start[kept] - cfg.keep_slack)
    history: list[float] = []
    first_solved = None
    fast = fast_dtype(cfg)
    # bf16 first where the CPU multiplies it natively (AMX: 8x fp32, AVX512-BF16: 2.3x); then the model's own
    # precision judges every sequence and finishes what bf16 left short (the served model and the verification
    # are fp32). Each phase: (dtype, steps (None: what the prompt phase left of ``cfg.steps``), the sequences
    # it starts from (None: every one, judged)).
    phases = [(fast, cfg.steps, None)]
    if first:
        phases = [(fast, cfg.steps // 2, sorted(set(first))), (fast, None, None)]
    if fast is not None:
        phases.append((None, cfg.finish_steps, None))
    fast_steps = 0
    first_steps = 0
    finishing: set[int] = set()  # the sequences the fp32 finish started from
    try:
        for phase, (dtype, steps, start) in enumerate(phases):
            with linears_in(model, dtype) as exact:
                if start is not None:
                    active = start
                elif phase == 0:
                    active = list(range(len(seqs)))
                else:  # judged on every sequence: a fact still short on any of them goes on
                    worst, _ = evaluate(set(range(len(seqs))), False, dtype)
                    live = live_facts(worst, range(len(seqs)))
                    active = [i for i in range(len(seqs)) if int(owner_t[i]) in live]
                    if dtype is None:
                        finishing = set(active)
                for _ in range(cfg.steps - first_steps if steps is None else steps):
                    if not active:
                        break
                    active, live, loss = step(active, dtype)
                    history.append(loss)
                    fast_steps += dtype is not None
                    first_steps += start is not None
                    if first_solved is None:
                        first_solved = len(set(owners)) - len(live)
                    if progress is not None:
                        progress(len(history) - 1, len(live), loss)
                    if start is not None and len(live) <= cfg.first_until * n_facts:
                        break
            exact = contextlib.nullcontext
        if fast is not None and finishing:  # what is left unsolved, as the model's own precision sees it
            # The fp32 phase judged every sequence; only the facts it stepped moved since (a solved fact's
            # values stay put): their sequences are judged again, not all (an fp32 pass over every suffix,
            # ~20 s at 1,000 edits).
            worst, _ = evaluate(finishing, False, None)
            active = [i for i in sorted(finishing) if worst[i] < 0]
        elif fast is None and active:  # the last step's judgement came before it: judge its result
            worst, _ = evaluate(set(active), False, None)
            active = [i for i in active if worst[i] < 0]
    finally:
        for p in params:
            p.requires_grad_(False)
            p.grad = None
    return {"steps": len(history), "bf16_steps": fast_steps, "prompt_steps": first_steps,
            "prefix_tokens": sum(prefix), "tokens": sum(len(s.ids) for s in seqs), "packings": packs.packings,
            "solved_before_any_step": first_solved or 0, "loss_first": history[0] if history else None,
            "loss_last": history[-1] if history else None, "unsolved": len(active)}


__all__ = ["ValueConfig", "WORD_END", "owned_slots", "solve_values"]
