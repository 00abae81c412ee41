"""Bound slots: the random-world sampler, slot binding and the retrieval loss."""

from __future__ import annotations

import random

import torch

from lokiserve.model import KmmOptions
from lokiserve.train.bound_slots import null_slot, retrieval_loss, slot_answer_ids
from lokiserve.train.data import Encoder, make_batch
from lokiserve.train.fastkmm import fast_retrieval
from lokiserve.train.sampler import Sampler
from lokiserve.train.tokenizer import load_tokenizer, special_ids
from lokiserve.train.world import FIELD_NAMES, RESERVE_FIELD
from tests.conftest import make_model


def test_bound_sampler_states_a_new_random_world_each_draw_and_binds_slots(tiny_run):
    cfg, _, world, _, out = tiny_run
    tok = load_tokenizer(out)
    names = list(FIELD_NAMES)
    field_of = {n: i for i, n in enumerate(names)}
    sampler = Sampler(world, Encoder(tok), cfg, field_of)
    sampler.rng = random.Random(5)
    sampler.redraw()
    first = {d: [f.answer for f in facts] for d, facts in sampler.current.items()}
    sampler.redraw()
    second = {d: [f.answer for f in facts] for d, facts in sampler.current.items()}
    assert first != second
    every = {x.answer for x in world.facts}
    named = 0
    for d, facts in sampler.current.items():  # each answer is its relation's, or a random name (name_share)
        for new, real in zip(facts, world.by_domain(d)):
            assert (new.entity, new.relation) == (real.entity, real.relation)
            own = {x.answer for x in world.by_domain(d) if x.relation == real.relation}
            assert new.answer in own or (new.answer not in every and new.answer.strip().isalpha())
            named += new.answer not in own
    assert 0 < named < sum(map(len, sampler.current.values()))
    J = cfg.answer_tokens
    ids = slot_answer_ids(sampler.enc, sampler.bound_worlds(), len(names), cfg.kmm_slots_per_field, J)
    seqs, scale = sampler.batch(24, len(names), field_of[RESERVE_FIELD])
    sp = special_ids(tok)
    batch = make_batch(seqs, len(names), sp["pad"], sp["abstain"], scale, 0.2)
    bound = continued = 0
    for b, s in enumerate(seqs):
        prev = None
        for t, slot in s.slots:  # each bound position predicts the answer token its slot lists for it
            j = j + 1 if prev == (t - 1, slot) else 0
            prev = (t, slot)
            assert batch["slot_targets"][b, t] == slot
            assert batch["input_ids"][b, t + 1] == ids[s.field, slot, j]
            bound += 1
            continued += j > 0
    assert bound > 0 and continued > 0


def test_retrieval_loss_names_the_own_slot_and_the_null_slot_elsewhere():
    torch.manual_seed(0)
    model = make_model()
    mems = list(model.memory_modules().values())
    with torch.no_grad():  # queries of a trained model's size (the init's are tiny)
        for m in mems:
            m.query.weight.mul_(50)
    F, N = mems[0].keys.shape[:2]
    x = torch.randint(0, 97, (2, 5))
    batch = {"slot_targets": torch.full((2, 5), -1), "mask": torch.ones(2, 5, dtype=torch.bool),
             "grad_fields": torch.zeros(2, F, dtype=torch.bool)}
    batch["slot_targets"][0, 3], batch["slot_targets"][1, 4] = 2, 5
    batch["grad_fields"][0, 0] = batch["grad_fields"][1, 1] = True

    def forward():
        opts = KmmOptions(token_mask=batch["mask"], queries={}, retrieval=fast_retrieval)
        model(x, kmm=opts)
        return opts.queries

    def loss():
        return retrieval_loss(model, batch, forward())

    before, n = loss()
    assert n == 2 and torch.isfinite(before)
    before.backward()
    assert all(m.keys.grad is not None and m.keys.grad.abs().sum() > 0 for m in mems)
    # training the keys alone (the backbone fixed) makes the named slots win
    opt = torch.optim.Adam([m.keys for m in mems], lr=0.1)
    for _ in range(60):
        opt.zero_grad()
        value, _ = loss()
        value.backward()
        opt.step()
    after = float(loss()[0].detach())
    assert after < float(before.detach()) / 4, (float(before.detach()), after)
    with torch.no_grad():
        queries = forward()
        for layer, m in model.memory_modules().items():
            q = queries[layer].view(2, 5, m.heads, -1)
            top0 = torch.einsum("hd,fnd->hfn", q[0, 3], m.keys).argmax(-1)  # (H, F)
            assert (top0[:, 0] == 2).all() and (top0[:, 1:] == null_slot(N)).all()
