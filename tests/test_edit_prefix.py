"""The value solve's frozen prefix (``lokiserve.edit.prefix``): before the
first position any solved slot is read at, no value can change anything, and
the suffix run on the stored state gives what the whole sequence gives."""

from __future__ import annotations

import json

import pytest
import torch

from lokiserve.edit.encoding import Codec, right_padded
from lokiserve.edit.prefix import PrefixBatch, unread_prefix
from tests.engine_utils import DEMO, demo_available

pytestmark = pytest.mark.skipif(not demo_available(), reason="the shipped demo model is missing")


def _setup():
    from lokiserve.train.checkpoint import load_model
    from lokiserve.train.field_training import read_slots

    model = load_model(DEMO)
    codec = Codec.from_model_dir(DEMO)
    rows = [json.loads(line) for line in (DEMO / "world.jsonl").read_text().splitlines() if line.strip()]
    f = model.field_index("geography")
    solved = [r for r in rows if r["field"] == "geography"][:6]
    slots = read_slots(model, f, codec.tok, [{"prompt": r["prompt"], "answer": r["answer"]} for r in solved])
    # Sequences of the solved facts, of the same domain, and of other domains, of varied lengths.
    picked = solved + [r for r in rows if r["field"] == "geography"][40:46] + \
        [r for r in rows if r["field"] != "geography"][::60]
    seqs = [codec.sequence(r["prompt"], r["answer"]) for r in picked]
    return model, f, slots, seqs


def _set_values(model, f, slots, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for li, s in slots.items():
            mem = model.memory_modules()[li]
            mem.values[f, s] = torch.randn(len(s), mem.values.shape[-1], generator=g) * 3


@torch.no_grad()
def test_the_unread_prefix_is_untouched_by_the_solved_values_and_the_suffix_run_matches_the_whole():
    model, f, slots, seqs = _setup()
    prefix = unread_prefix(model, f, slots, seqs)
    assert all(0 <= p <= s.answer_start - 1 for p, s in zip(prefix, seqs))
    assert sum(prefix) > 0  # there is something to save
    assert unread_prefix(model, f, {}, seqs) == [s.answer_start - 1 for s in seqs]  # nothing solved
    ids, mask = right_padded([s.ids for s in seqs])
    # built before the values move: the prefix state and the suffixes' input to the first solved layer
    # must not depend on them
    lowest = min(slots)
    assert lowest > 0  # the test means something only if blocks below it are skipped
    early = PrefixBatch(model, seqs, prefix, from_layer=lowest)

    _set_values(model, f, slots, 0)
    whole_a = model.model(ids, mask)
    suffix = PrefixBatch(model, seqs, prefix).forward(list(range(len(seqs))))
    rows = [1, 0, 3]  # any subset, in any order
    some = PrefixBatch(model, seqs, prefix).forward(rows)
    for r, (s, p) in enumerate(zip(seqs, prefix)):
        n = len(s.ids) - p
        torch.testing.assert_close(suffix[r, :n], whole_a[r, p: len(s.ids)], atol=2e-5, rtol=1e-4)
    for k, r in enumerate(rows):
        n = len(seqs[r].ids) - prefix[r]
        torch.testing.assert_close(some[k, :n], whole_a[r, prefix[r]: len(seqs[r].ids)], atol=2e-5, rtol=1e-4)

    _set_values(model, f, slots, 1)
    whole_b = model.model(ids, mask)
    got = early.forward(rows)  # its cached lower blocks, the values as they are now above them
    for k, r in enumerate(rows):
        n = len(seqs[r].ids) - prefix[r]
        torch.testing.assert_close(got[k, :n], whole_b[r, prefix[r]: len(seqs[r].ids)], atol=2e-5, rtol=1e-4)
    moved = False
    for r, (s, p) in enumerate(zip(seqs, prefix)):
        assert torch.equal(whole_a[r, :p], whole_b[r, :p]), r  # nothing before the prefix's end moves
        moved |= not torch.allclose(whole_a[r, p: len(s.ids)], whole_b[r, p: len(s.ids)])
    assert moved  # the values do reach the suffixes


def test_facts_read_together_stay_in_play_together():
    """``solve_values(groups=...)``: a solved fact whose group-mate is not yet
    solved keeps moving with it (one subject's facts are read together: a
    frozen one would be undone by its mate's steps)."""
    from lokiserve.edit.values import ValueConfig, owned_slots, solve_values

    model, f, slots, seqs = _setup()
    pair = {li: s[:2] for li, s in slots.items()}
    already = seqs[0].answer  # fact 0 keeps the answer the demo gives: solved before any step
    other = next(s.answer for s in seqs[6:] if s.answer != seqs[1].answer)  # fact 1 gets another answer
    saved = {li: model.memory_modules()[li].values.detach().clone() for li in pair}
    live_at_first_step = {}
    for groups in (None, [0, 0]):
        with torch.no_grad():
            for li, v in saved.items():
                model.memory_modules()[li].values.copy_(v)
        seen = []
        report = solve_values(model, f, owned_slots(pair), seqs[:2], [0, 1], ValueConfig(steps=1, finish_steps=0),
                              targets=[already, other], groups=groups,
                              progress=lambda step, live, loss: seen.append(live))
        live_at_first_step[str(groups)] = seen[0]
    assert report["steps"] == 1
    assert live_at_first_step == {"None": 1, "[0, 0]": 2}


def test_the_prompt_phase_runs_on_the_prompts_alone_then_every_sequence_is_judged():
    """``solve_values(first=...)``: the first steps see only the given
    sequences (the facts' prompts); once those are solved, every sequence is
    judged, and a fact still short on another of its sequences goes on. The
    report's ``unsolved`` is counted over every sequence, in fp32."""
    from lokiserve.edit.values import ValueConfig, owned_slots, solve_values

    model, f, slots, seqs = _setup()
    pair = {li: s[:2] for li, s in slots.items()}
    # Facts 0 and 1 keep the demo's own answers on their prompts (solved before any step); a second sequence
    # of fact 1, its prompt asked for another answer, is outside the prompt phase and unsolved.
    other = next(s.answer for s in seqs[6:] if s.answer != seqs[1].answer)
    work = [seqs[0], seqs[1], seqs[1]]
    targets = [seqs[0].answer, seqs[1].answer, other]
    seen = []
    cfg = ValueConfig(steps=4, finish_steps=0, bf16=False)
    report = solve_values(model, f, owned_slots(pair), work, [0, 1, 1], cfg, targets=targets, first=[0, 1],
                          progress=lambda step, live, loss: seen.append(live))
    assert report["prompt_steps"] == 1 and seen[0] == 0  # the prompts alone: nothing in play after one step
    assert report["steps"] > 1 and seen[1] == 1  # then fact 1 goes on, for its other sequence
    with torch.no_grad():
        ids, mask = right_padded([s.ids for s in work])
        logp = torch.log_softmax(model(ids, attention_mask=mask).logits.float(), -1)
        worst = [min(float(logp[r, s.answer_start - 1 + j, t]) for j, t in enumerate(tg))
                 for r, (s, tg) in enumerate(zip(work, targets))]
    assert report["unsolved"] == sum(w < cfg.done_logprob for w in worst), worst


def test_a_keep_sequence_is_solved_where_it_stays_the_argmax_no_less_sure_than_before():
    """``solve_values(keep=...)``: a sequence whose target is the model's own
    prediction (a held neighbour or retain fact) must stay as it was, not grow
    surer than the model was: with p(target) below ``done_logprob`` it is
    solved before any step as a keep sequence, and in play as a write."""
    import math

    from lokiserve.edit.encoding import Sequence
    from lokiserve.edit.values import ValueConfig, owned_slots, solve_values

    model, f, slots, seqs = _setup()
    pair = {li: s[:1] for li, s in slots.items()}
    cfg = ValueConfig(steps=1, finish_steps=0, bf16=False)
    # a position inside a prompt where the model's own prediction is unsure: argmax, yet p below e^-0.4
    unsure = None
    with torch.no_grad():
        for s in seqs:
            logp = torch.log_softmax(model(torch.tensor([s.ids])).logits[0].float(), -1)
            for t in range(2, s.answer_start):
                top = float(logp[t - 1].max())
                if math.log(0.05) < top < cfg.done_logprob - 0.2:
                    unsure = (Sequence(s.ids[: t + 1], t, min(s.read_at, t - 1)), (int(logp[t - 1].argmax()),))
                    break
            if unsure:
                break
    assert unsure is not None
    seq, target = unsure
    for keep, live in ((True, 0), (False, 1)):
        seen = []
        solve_values(model, f, owned_slots(pair), [seq], [0], cfg, targets=[target], keep=[keep],
                     progress=lambda step, n, loss: seen.append(n))
        assert seen[0] == live, (keep, seen)


@torch.no_grad()
def test_answer_argmax_runs_each_distinct_sequence_once_and_answers_every_copy():
    """Verification's teacher-forced predictions: duplicates (neighbour texts
    shared by many edits) are computed once and give what a lone run gives."""
    from lokiserve.edit import queries

    model, _f, _slots, seqs = _setup()
    alone = [queries.answer_argmax(model, [s])[0] for s in seqs]
    mixed = [seqs[3], seqs[0], seqs[3], seqs[5], seqs[0], seqs[3]]
    calls = []
    real = model.model.forward

    def counting(ids, *a, **k):
        calls.append(int(ids.shape[0]))
        return real(ids, *a, **k)
    model.model.forward = counting
    try:
        got = queries.answer_argmax(model, mixed)
    finally:
        del model.model.forward
    assert sum(calls) == 3  # three distinct sequences, one row each
    for s, a in zip(mixed, got):
        assert torch.equal(a, alone[seqs.index(s)])


@torch.no_grad()
def test_packs_repack_a_shrinking_set_by_copying_state_and_every_batch_still_matches_the_whole():
    """``Packs``: the packing of every sequence runs the prefixes; the packing
    of a subset copies their state (``PrefixBatch.gather``). Each batch, run
    on the values as they are now, gives what the whole sequences give."""
    from lokiserve.edit.prefix import Packs

    from lokiserve.edit.encoding import Sequence

    model, f, slots, seqs = _setup()
    # 0-3 tokens of another text in front of each: sequences of one suffix length with prefixes of several
    # lengths, so the state copied from a padded batch must be taken from its real positions
    seqs = [Sequence(seqs[i - 1].ids[: i % 4] + s.ids, s.answer_start + i % 4, s.read_at + i % 4)
            for i, s in enumerate(seqs)]
    prefix = unread_prefix(model, f, slots, seqs)
    packs = Packs(model, seqs, prefix, from_layer=min(slots), tokens_per_batch=64)  # small: several batches
    every = packs.runs(set(range(len(seqs))))
    assert any(len({prefix[i] for i in chunk}) > 1 for chunk, _ in every)  # padded prefixes to copy from
    assert sorted(i for chunk, _ in every for i in chunk) == list(range(len(seqs)))
    assert all(len({len(seqs[i].ids) - prefix[i] for i in chunk}) == 1 for chunk, _ in every)  # one suffix length
    some = set(range(0, len(seqs), 3))
    part = packs.runs(some)
    assert part is not every and packs.packings == 2
    assert sorted(i for chunk, _ in part for i in chunk) == sorted(some)
    assert packs.runs(set(list(some)[: len(some) // 2 + 1])) is part  # more than half still in play: kept
    _set_values(model, f, slots, 2)  # after packing: the stored state must not depend on the values
    ids, mask = right_padded([s.ids for s in seqs])
    whole = model.model(ids, mask)
    for runs in (every, part):
        for chunk, run in runs:
            rows = list(range(len(chunk)))[::-1]  # any order
            got = run.forward(rows)
            for k, r in enumerate(rows):
                i = chunk[r]
                n = len(seqs[i].ids) - prefix[i]
                torch.testing.assert_close(got[k, :n], whole[i, prefix[i]: len(seqs[i].ids)], atol=2e-5, rtol=1e-4)
