"""``lokiserve train-field``: only the named field changes, on the bound-slot
path (closed-form edit, fitted new field) and the gradient path (a model
whose field values are free parameters)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from lokiserve.memory import read_field
from lokiserve.train.bound_slots import VALUE_CODEBOOK, load_codebook, null_slot
from lokiserve.train.checkpoint import load_model
from lokiserve.train.field_training import read_slots, train_field
from lokiserve.train.tokenizer import encode, load_tokenizer
from lokiserve.train.world import RESERVE_FIELD, edit_domain, write_facts


def _answer_id(tok, answer: str) -> int:
    return encode(tok, answer)[0]  # a bound slot stores the answer's first token


@pytest.mark.parametrize("field", ["geography", RESERVE_FIELD])
def test_train_field_changes_only_the_named_field(tiny_run, tmp_path, field):
    from lokiserve.cli import main

    _, _, world, _, out = tiny_run
    facts = edit_domain(world, "geography", 0.5) if field == "geography" else world.new_facts
    facts_path = write_facts(facts, tmp_path / "facts.jsonl")
    before = load_file(str(out / "model.safetensors"))
    field_path = tmp_path / "f.safetensors"
    rc = main(["train-field", "--model", str(out), "--facts", str(facts_path), "--field", field,
               "--out", str(field_path), "--steps", "6", "--batch-size", "8", "--no-progress",
               "--force"])  # a 6-step tiny model fails verification: this test is about isolation
    assert rc == 0
    assert load_file(str(out / "model.safetensors")).keys() == before.keys()  # the model dir is untouched
    fld = read_field(field_path)
    model = load_model(out)
    ref = {n: t.clone() for n, t in model.state_dict().items()}
    model.apply_field(field, fld)
    f = model.field_index(field)
    changed = set()
    for n, t in model.state_dict().items():
        if torch.equal(t, ref[n]):
            continue
        changed.add(n)
        if n.endswith(("keys", "values")):
            others = [i for i in range(t.shape[0]) if i != f]
            assert torch.equal(t[others], ref[n][others]), n  # every other field bit-identical
            assert not torch.equal(t[f], ref[n][f])
    assert changed and all(n.endswith(("keys", "values", "enabled")) for n in changed), changed
    assert model.field_state(field) == "active"
    assert fld.backbone == model.backbone_hash()


def test_gradient_path_leaves_every_other_tensor_bit_identical(tiny_run):
    """A model without a value codebook (its field values are free parameters)
    is written by gradient steps on the field's keys and values alone."""
    _, _, world, _, out = tiny_run
    model = load_model(out)
    model.config.kmm_value_codebook = None  # not a bound-slot model: the gradient path
    ref = {n: t.clone() for n, t in model.state_dict().items()}
    rows = [f.record() for f in edit_domain(world, "people", 0.5)]
    fld, info = train_field(out, rows, "people", None, steps=5, batch_size=8, progress=False, model=model,
                            log=lambda *_: None)
    f = model.field_index("people")
    assert info["init"] == "current" and info["steps"] == 5
    n_changed = 0
    for n, t in model.state_dict().items():
        if n.endswith((".keys", ".values")) and ".kmm." in n:
            others = [i for i in range(t.shape[0]) if i != f]
            assert torch.equal(t[others], ref[n][others]), n
            n_changed += int(not torch.equal(t[f], ref[n][f]))
        else:
            assert torch.equal(t, ref[n]), n
    assert n_changed == 2 * len(model.memory_modules())
    layer = next(iter(fld.keys))
    torch.testing.assert_close(fld.keys[layer], model.export_field("people").keys[layer])


def test_bound_edit_writes_values_of_the_named_field_only(tiny_run, tmp_path):
    """An edit of a bound-slot field is written, not trained: the slot each
    edited prompt reads gets the new answer's codebook row (a fact that shared
    its slot with another answer moves to a free slot, and only then are the
    field's keys refitted); every other field and tensor stays bit-identical,
    and the null slot stays empty."""
    _, _, world, _, out = tiny_run
    model = load_model(out)
    ref = {n: t.clone() for n, t in model.state_dict().items()}
    rows = [f.record() for f in edit_domain(world, "people", 0.5)]
    fld, info = train_field(out, rows, "people", tmp_path / "people.safetensors", progress=False, model=model,
                            log=lambda *_: None)
    assert info["steps"] == 0 and info["written"] and (tmp_path / "people.safetensors").exists()
    moved = sum(v["moved"] for k, v in info["written"].items() if k != "fit")
    assert ("fit" in info["written"]) == (moved > 0)
    f = model.field_index("people")
    for n, t in model.state_dict().items():
        if n.endswith((".values", ".keys")) and ".kmm." in n:
            others = [i for i in range(t.shape[0]) if i != f]
            assert torch.equal(t[others], ref[n][others]), n
            if n.endswith(".keys") and not moved:
                assert torch.equal(t, ref[n]), n
            if n.endswith(".values"):
                assert not t[f, null_slot(t.shape[1])].any()
        else:
            assert torch.equal(t, ref[n]), n
    tok = load_tokenizer(out)
    codebook = load_codebook(out / VALUE_CODEBOOK)
    slots = read_slots(model, f, tok, rows)  # after the edit (and any refit): where each prompt reads
    for li, mem in model.memory_modules().items():
        for i, r in enumerate(rows):
            if r["changed"] and info["written"][str(li)]["moved"] == 0:
                slot = int(slots[li][i])
                torch.testing.assert_close(mem.values[f, slot], codebook[_answer_id(tok, r["answer"])],
                                           rtol=0, atol=0)


def test_bound_new_field_fits_keys_to_the_frozen_queries(tiny_run):
    """A new domain in the empty field: fact i in slot i with its codebook
    value, keys fitted to the frozen model's queries (the fit lowers its loss;
    the other domains' prompts read the null slot), nothing else in the model
    changes. (This 40-step model's queries barely tell entities apart, so
    finding the facts is measured on the demo model, not here.)"""
    _, _, world, _, out = tiny_run
    model = load_model(out)
    ref = {n: t.clone() for n, t in model.state_dict().items()}
    rows = [f.record() for f in world.new_facts]
    _, info = train_field(out, rows, RESERVE_FIELD, None, steps=3, batch_size=8, progress=False, model=model,
                          log=lambda *_: None)
    f = model.field_index(RESERVE_FIELD)
    assert all(r["loss"] < r["loss_start"] and r["others_silent"] > 0.9 for r in info["fitted"].values()), \
        info["fitted"]
    for n, t in model.state_dict().items():
        if n.endswith((".keys", ".values", ".enabled")) and ".kmm." in n:
            others = [i for i in range(t.shape[0]) if i != f]
            assert torch.equal(t[others], ref[n][others]), n
        else:
            assert torch.equal(t, ref[n]), n
    assert model.field_state(RESERVE_FIELD) == "active"
