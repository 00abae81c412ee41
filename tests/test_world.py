"""The knowledge world and its tokenizer (issue 3): deterministic, fictional, tokenisation-stable."""

from __future__ import annotations

from lokiserve.train.tokenizer import encode, save_hf_tokenizer, special_ids, train_tokenizer
from lokiserve.train.world import (
    FIELD_NAMES, RESERVE_FIELD, TRAINED_DOMAINS, build_world, edit_domain, facts_from_rows, practice_facts,
    read_facts, write_facts,
)

SMALL = dict(entities_per_domain=8, new_entities=5)


def _dump(world):
    return [(f.domain, f.field, f.prompt, f.answer, f.sentences) for f in world.facts + world.new_facts]


def test_world_is_deterministic_from_seed():
    a, b, c = build_world(3, **SMALL), build_world(3, **SMALL), build_world(4, **SMALL)
    assert _dump(a) == _dump(b)
    assert a.connectives == b.connectives
    assert _dump(a) != _dump(c)
    assert [f.prompt for f in practice_facts(a, 2, 5)] == [f.prompt for f in practice_facts(b, 2, 5)]


def test_world_shape_domains_fields_queries():
    w = build_world(0, **SMALL)
    assert w.domains == list(TRAINED_DOMAINS) and len(w.domains) >= 4
    assert RESERVE_FIELD in FIELD_NAMES and RESERVE_FIELD not in {f.field for f in w.facts}
    for f in w.facts:
        assert f.field == f.domain  # one domain <-> one field
        assert f.answer.startswith(" ") and " " not in f.answer.strip()
        # the query is one of the training phrasings, cut before the answer
        assert any(b == f.prompt and a == f.answer for b, a, _ in f.sentences)
    for d in w.domains:
        rels = {f.relation for f in w.by_domain(d)}
        assert len(rels) >= 2
    assert {f.field for f in w.new_facts} == {RESERVE_FIELD}
    prompts = [f.prompt for f in w.facts + w.new_facts]
    assert len(prompts) == len(set(prompts))  # every query is unambiguous


def test_practice_and_new_domain_entities_never_overlap():
    w = build_world(0, **SMALL)
    new = {f.entity for f in w.new_facts}
    for r in range(3):
        assert not new & {f.entity for f in practice_facts(w, r, 5)}


def test_edit_changes_half_the_answers_within_relation(tmp_path):
    w = build_world(0, **SMALL)
    edited = edit_domain(w, "geography", 0.5)
    orig = {f.prompt: f.answer for f in w.by_domain("geography")}
    changed = [f for f in edited if f.changed]
    assert len(changed) == round(0.5 * len(orig))
    for f in edited:
        assert (orig[f.prompt] != f.answer) == bool(f.changed)
    path = write_facts(edited, tmp_path / "e.jsonl")
    rows = read_facts(path)
    assert [r["answer"] for r in rows] == [f.answer for f in edited]
    rebuilt = facts_from_rows(rows)
    assert [f.sentences for f in rebuilt] == [f.sentences for f in edited]


def test_tokenizer_round_trip_and_answer_stability(tmp_path):
    w = build_world(0, **SMALL)
    tok = train_tokenizer(w.corpus(), vocab_size=700)
    texts = [b + a + af for f in w.facts + w.new_facts for b, a, af in f.sentences] + w.connectives[:20]
    for t in texts + ["Unseen wordz, 123 & ünïcode!"]:
        assert tok.decode(encode(tok, t)) == t
    for f in w.facts:
        # the answer tokenises the same alone and after its prompt
        assert encode(tok, f.prompt + f.answer) == encode(tok, f.prompt) + encode(tok, f.answer)
    sp = special_ids(tok)
    assert len(set(sp.values())) == 4
    # HF form: transformers loads it offline and adds <s> like training does
    from transformers import AutoTokenizer

    save_hf_tokenizer(tok, tmp_path)
    hf = AutoTokenizer.from_pretrained(str(tmp_path))
    ids = hf(w.facts[0].prompt)["input_ids"]
    assert ids == [sp["bos"]] + encode(tok, w.facts[0].prompt)
    assert hf.bos_token_id == sp["bos"] and hf.eos_token_id == sp["eos"] and hf.pad_token_id == sp["pad"]
    assert hf.decode(ids, skip_special_tokens=True) == w.facts[0].prompt
