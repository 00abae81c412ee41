"""Any-answer reading (``train-demo --answer-tokens J --name-share P``): a
slot's value lists an answer's first J tokens, every answer position reads
it, and some training answers are random names of word pieces."""

from __future__ import annotations

import random

import pytest
import torch

from lokiserve.edit.encoding import Codec
from lokiserve.edit.facts import parse_facts
from lokiserve.train.bound_slots import (VALUE_CODEBOOK, answer_token_ids, answer_values, codebook_tokens,
                                         load_codebook, new_codebook, slot_answer_ids)
from lokiserve.train.checkpoint import load_model, save_demo
from lokiserve.train.config import TrainConfig
from lokiserve.train.data import Encoder, fact_sequence
from lokiserve.train.names import NameMaker
from lokiserve.train.sampler import Sampler
from lokiserve.train.tokenizer import load_tokenizer
from lokiserve.train.world import FIELD_NAMES, TRAINED_DOMAINS, AnswerRedrawer
from tests.conftest import TINY_TRAIN


@pytest.fixture(scope="module")
def any_run(tmp_path_factory):
    from lokiserve.train.trainer import train_backbone

    root = tmp_path_factory.mktemp("any")
    cfg = TrainConfig(steps=25, **{**TINY_TRAIN, "kmm_value_dim": 24}, answer_tokens=3, name_share=0.5,
                      codebook_from_embeddings=True, whole_practice_rounds=True)
    model, world, _tok, info = train_backbone(cfg, root / "run", resume=False, progress=False, log=lambda *_: None)
    out = save_demo(model, world, root / "run", root / "model", info["value_codebook"])
    return cfg, world, out


def test_no_practice_round_starts_too_close_to_the_end(any_run):
    cfg, _, out = any_run
    ck = torch.load(out.parent / "run" / "checkpoint.pt", weights_only=False)
    assert cfg.practice_every == 10 and ck["step"] == 25
    assert ck["practice_round"] == 1  # round 2 would have started at step 20 with 5 steps left


def test_a_codebook_from_embeddings_ships_as_plain_rows(any_run):
    cfg, _, out = any_run
    ck = torch.load(out.parent / "run" / "checkpoint.pt", weights_only=False)
    embed = ck["model"]["model.embed_tokens.weight"]
    proj = ck["codebook_projection"]
    assert proj.shape == (3, 8, cfg.hidden_size)
    built = ck["codebook"] + torch.einsum("vd,jcd->jvc", embed, proj)
    torch.testing.assert_close(load_codebook(out / VALUE_CODEBOOK), built)


def test_a_value_lists_each_answer_token_in_its_own_chunk():
    cb = torch.randn(3, 50, 4)
    v = answer_values(cb, torch.tensor([[7, 9, -1], [1, 2, 3]]))
    assert v.shape == (2, 12)
    torch.testing.assert_close(v[0], torch.cat([cb[0, 7], cb[1, 9], torch.zeros(4)]), rtol=0, atol=0)
    torch.testing.assert_close(v[1], torch.cat([cb[0, 1], cb[1, 2], cb[2, 3]]), rtol=0, atol=0)
    with pytest.raises(ValueError, match="needs ids of shape"):
        answer_values(cb, torch.tensor([7, 9]))
    assert codebook_tokens(cb) == 3 and codebook_tokens(torch.randn(50, 4)) == 1
    with pytest.raises(ValueError, match="not a multiple"):
        new_codebook(50, 10, torch.Generator().manual_seed(0), answer_tokens=3)
    assert new_codebook(50, 12, torch.Generator().manual_seed(0), answer_tokens=3).shape == (3, 50, 4)


def test_names_are_word_pieces_within_the_token_limit(tiny_run):
    tok = load_tokenizer(tiny_run[4])
    maker = NameMaker(tok, 3)
    names = [maker.name(random.Random(i)) for i in range(200)]
    assert names == [maker.name(random.Random(i)) for i in range(200)]  # seeded
    lengths = {len(tok.encode(" " + n, add_special_tokens=False).ids) for n in names}
    assert lengths <= {1, 2, 3} and len(lengths) > 1
    assert all(n.isalpha() for n in names) and len(set(names)) > 150
    with pytest.raises(ValueError):
        NameMaker(tok, 0)


def test_every_answer_position_up_to_J_reads_the_facts_slot(tiny_run):
    cfg, _, world, _, out = tiny_run
    enc = Encoder(load_tokenizer(out))
    fact = world.facts[0]
    long = next(f for f in world.facts if len(enc.text(f.answer)) >= 2)
    for f in (fact, long):
        n = len(enc.text(f.answer))
        seq = fact_sequence(enc, [f], 0, random.Random(0), template=0, slots=[5], answer_tokens=3)
        assert [s for _, s in seq.slots] == [5] * min(3, n)
        first = seq.answer.index(True)
        assert [t for t, _ in seq.slots] == [first - 1 + j for j in range(min(3, n))]
        assert seq.ids[first: first + min(3, n)] == enc.text(f.answer)[:3]
        one = fact_sequence(enc, [f], 0, random.Random(0), template=0, slots=[5])
        assert one.slots == seq.slots[:1]  # J = 1: the first bound-slot demo's single read


def test_redraw_states_names_only_when_asked(tiny_run):
    cfg, _, world, _, out = tiny_run
    facts = world.by_domain(TRAINED_DOMAINS[0])
    answers = {f.answer for f in world.facts}
    maker = NameMaker(load_tokenizer(out), 3)
    plain = AnswerRedrawer().redraw(facts, random.Random(1))
    assert plain == AnswerRedrawer().redraw(facts, random.Random(1), names=maker, name_share=0.0)
    assert all(f.answer in answers for f in plain)
    named = AnswerRedrawer().redraw(facts, random.Random(1), names=maker, name_share=1.0)
    assert [(f.entity, f.relation) for f in named] == [(f.entity, f.relation) for f in facts]
    assert sum(f.answer not in answers for f in named) > len(facts) // 2
    assert all(s[1] == f.answer for f in named for s in f.sentences)


def test_any_answer_training_stores_every_answer_token_in_the_slot(any_run):
    cfg, world, out = any_run
    tok = load_tokenizer(out)
    codebook = load_codebook(out / VALUE_CODEBOOK)
    assert codebook.shape == (3, tok.get_vocab_size(), 8)
    model = load_model(out)
    enc = Encoder(tok)
    for d in TRAINED_DOMAINS:
        f = model.field_index(d)
        facts = world.by_domain(d)
        ids = torch.tensor([answer_token_ids(enc, x.answer, 3) for x in facts])
        for mem in model.memory_modules().values():
            torch.testing.assert_close(mem.values[f, : len(facts)], answer_values(codebook, ids), rtol=0, atol=0)
    sampler = Sampler(world, enc, cfg, {n: i for i, n in enumerate(FIELD_NAMES)})
    sampler.redraw()
    drawn = slot_answer_ids(enc, sampler.bound_worlds(), len(FIELD_NAMES), cfg.kmm_slots_per_field, 3)
    assert drawn.shape == (len(FIELD_NAMES), cfg.kmm_slots_per_field, 3)
    known = {x.answer for x in world.facts}
    assert any(x.answer not in known for facts in sampler.current.values() for x in facts)


def test_the_writer_stores_an_answer_the_codebook_lists_in_closed_form(any_run):
    from lokiserve.edit.writer import codebook_values, model_codebook_of
    from lokiserve.train.field_training import read_slots

    cfg, world, out = any_run
    model, codec = load_model(out), Codec.from_model_dir(out)
    codebook = model_codebook_of(model)
    torch.testing.assert_close(codebook, load_codebook(out / VALUE_CODEBOOK), rtol=0, atol=0)
    maker = NameMaker(codec.tok, 3)
    rows = [{"prompt": r.prompt, "answer": maker.name(random.Random(i))} for i, r in enumerate(world.facts[:4])]
    rows.append({"prompt": world.facts[4].prompt, "answer": "a b c d e f g"})  # longer than the codebook lists
    facts = parse_facts(rows)
    f = model.field_index(world.facts[0].field)
    slots = read_slots(model, f, codec.tok, [fa.as_row() for fa in facts])
    before = {li: m.values.detach().clone() for li, m in model.memory_modules().items()}
    answers = [codec.sequence(fa.prompt, fa.answer).answer for fa in facts]
    assert codebook_values(model, f, answers, slots) == 4
    for li, mem in model.memory_modules().items():
        want = {}  # slot -> the value of the last fact that reads it (a tiny model's facts may share one)
        for i, fa in enumerate(facts[:4]):
            ids = list(codec.sequence(fa.prompt, fa.answer).answer)
            want[int(slots[li][i])] = answer_values(codebook, torch.tensor(ids + [-1] * (3 - len(ids))))
        for slot, value in want.items():
            torch.testing.assert_close(mem.values[f, slot], value, rtol=0, atol=0)
        changed = (mem.values != before[li]).any(-1)
        changed[f, slots[li][:4]] = False
        assert not changed.any()  # nothing else moved, the long answer's slot included
