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
