"""Trainer, training-time KMM and field training (issue 3), on a tiny model in seconds."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from lokiserve.memory import read_field
from lokiserve.train.fastkmm import fast_kmm, token_mask
from lokiserve.train.trainer import TrainConfig, load_model, save_demo, train_backbone
from lokiserve.train.world import RESERVE_FIELD, edit_domain, read_facts, write_facts
from tests.conftest import make_model

TINY = dict(
    entities_per_domain=5, new_entities=4, practice_entities=4, vocab_size=600,
    hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
    intermediate_size=128, kv_latent_dim=32, kmm_layers=[0, 1], kmm_slots_per_field=32, kmm_key_dim=16,
    kmm_value_dim=16, kmm_heads=2, kmm_topk=4, batch_size=16, warmup=5, lr=3e-3, memory_lr=1e-2,
    practice_every=10, eval_every=1000, ckpt_every=1000, threads=1, bound_slots=False,
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    cfg = TrainConfig(steps=40, **TINY)
    model, world, tok, info = train_backbone(cfg, root / "run", resume=False, progress=False, log=lambda *_: None)
    out = save_demo(model, world, root / "run", root / "model")
    return cfg, model, world, info, out, root


def test_short_training_lowers_the_loss(tiny_run):
    _, _, _, info, _, _ = tiny_run
    losses = [h["loss"] for h in info["history"]]
    assert len(losses) == 40
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 0.5, (first, last)


def test_training_is_deterministic_and_resumable(tiny_run, tmp_path):
    """Stop at step 20, resume to 40: the same losses and weights as one uninterrupted run."""
    cfg, model, _, info, _, _ = tiny_run
    quiet = dict(progress=False, log=lambda *_: None)
    train_backbone(cfg, tmp_path / "r", resume=False, stop_at=20, **quiet)
    assert (tmp_path / "r" / "checkpoint.pt").exists()
    resumed, _, _, info2 = train_backbone(cfg, tmp_path / "r", resume=True, **quiet)
    assert [h["loss"] for h in info2["history"]] == pytest.approx([h["loss"] for h in info["history"]], rel=1e-5)
    resumed.zero_field(RESERVE_FIELD)  # the shipped model had its reserve field zeroed
    for (n, a), (_, b) in zip(model.state_dict().items(), resumed.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=n)


def test_saved_model_ships_reserve_empty_and_loads(tiny_run):
    _, _, world, _, out, _ = tiny_run
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "world.jsonl",
                 "generation_config.json"):
        assert (out / name).exists(), name
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model_type"] == "lokiformer" and cfg["kmm_field_names"][-1] == RESERVE_FIELD
    assert cfg["bos_token_id"] == 1 and cfg["eos_token_id"] == 2
    m = load_model(out)
    assert m.field_state(RESERVE_FIELD) == "zeroed"
    assert m.export_field(RESERVE_FIELD).is_empty()
    rows = read_facts(out / "world.jsonl")
    assert len(rows) == len(world.facts) and set(rows[0]) >= {"domain", "field", "prompt", "answer"}


def test_fast_kmm_matches_reference_forward():
    model = make_model()
    x = torch.randint(0, 97, (3, 9))
    scale = torch.ones(3, 3)
    scale[1, 2] = 0.0
    with torch.no_grad():
        model.memory_modules()[0].enabled[1] = False
        ref = model(x, kmm_field_scale=scale).logits
        with fast_kmm(model):
            fast = model(x, kmm_field_scale=scale).logits
            mask = torch.ones(3, 9, dtype=torch.bool)
            with token_mask(model, mask):
                fast2 = model(x, kmm_field_scale=scale).logits
    torch.testing.assert_close(fast, ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fast2, ref, rtol=1e-4, atol=1e-4)


def test_fast_kmm_routes_memory_gradient_to_own_field_only():
    model = make_model()
    x = torch.randint(0, 97, (2, 6))
    grad_fields = torch.tensor([[True, False, False], [True, False, False]])
    with fast_kmm(model):
        model(x, kmm_grad_fields=grad_fields).logits.sum().backward()
    for mem in model.memory_modules().values():
        assert mem.keys.grad[0].abs().sum() > 0 and mem.values.grad[0].abs().sum() > 0
        assert mem.keys.grad[1:].abs().sum() == 0 and mem.values.grad[1:].abs().sum() == 0
        assert mem.query.weight.grad.abs().sum() > 0  # the query still learns from every field


@pytest.mark.parametrize("field", ["geography", RESERVE_FIELD])
def test_train_field_changes_only_the_named_field(tiny_run, tmp_path, field):
    from lokiserve.cli import main

    _, _, world, _, out, _ = tiny_run
    facts = edit_domain(world, "geography", 0.5) if field == "geography" else world.new_facts
    facts_path = write_facts(facts, tmp_path / "facts.jsonl")
    before = load_file(str(out / "model.safetensors"))
    field_path = tmp_path / "f.safetensors"
    rc = main(["train-field", "--model", str(out), "--facts", str(facts_path), "--field", field,
               "--out", str(field_path), "--steps", "6", "--batch-size", "8", "--no-progress"])
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


@pytest.mark.parametrize("allocate, readout", [(False, 0.0), (True, 0.5)])
def test_train_field_leaves_every_other_tensor_bit_identical(tiny_run, allocate, readout):
    from lokiserve.train.field_training import train_field

    _, _, world, _, out, _ = tiny_run
    model = load_model(out)
    ref = {n: t.clone() for n, t in model.state_dict().items()}
    rows = [f.record() for f in edit_domain(world, "people", 0.5)]
    fld, info = train_field(out, rows, "people", None, steps=5, batch_size=8, progress=False, model=model,
                            log=lambda *_: None, allocate=allocate, readout_weight=readout)
    f = model.field_index("people")
    assert info["init"] == "current"
    if allocate:  # wrongly answered facts got free slots of their own
        alloc = info["allocation"]
        assert alloc["wrong_facts"] > 0
        # (a layer whose queries cannot tell the entities apart gets none: nothing to key on)
        assert all(v["allocated"] <= alloc["wrong_facts"] * v["per_fact"] for v in alloc["slots"].values())
        assert any(v["allocated"] > 0 for v in alloc["slots"].values())
    n_changed = 0
    for n, t in model.state_dict().items():
        if n.endswith((".keys", ".values")) and ".kmm." in n:
            others = [i for i in range(t.shape[0]) if i != f]
            assert torch.equal(t[others], ref[n][others]), n
            n_changed += int(not torch.equal(t[f], ref[n][f]))
        else:
            assert torch.equal(t, ref[n]), n
    assert n_changed == 2 * len(model.memory_modules())
    torch.testing.assert_close(fld.keys[next(iter(fld.keys))], model.export_field("people").keys[next(iter(fld.keys))])


def test_shadow_rounds_evaluate_and_are_dropped_from_the_saved_model(tmp_path):
    """Shadow fields exist only while training: rounds re-draw them, the
    periodic eval reads each in place of its real field, and the returned
    model has exactly the shipped fields."""
    from lokiserve.train.world import FIELD_NAMES

    cfg = TrainConfig(steps=12, **{**TINY, "eval_every": 6, "shadow_every": 5, "shadow_share": 0.4,
                                    "memory_readout_weight": 0.5})
    logs = []
    model, _, _, info = train_backbone(cfg, tmp_path / "run", resume=False, progress=False, log=logs.append)
    assert model.field_names == list(FIELD_NAMES)
    assert all(m.keys.shape[0] == len(FIELD_NAMES) for m in model.memory_modules().values())
    evals = [h["eval"] for h in info["history"] if "eval" in h]
    assert len(evals) == 2 and all("shadow:geography" in e and "geography" in e for e in evals)


def test_shadow_sequences_read_the_shadow_instead_of_the_real_field(tiny_run):
    import random

    from lokiserve.train.data import Encoder
    from lokiserve.train.tokenizer import load_tokenizer
    from lokiserve.train.trainer import SHADOW_PREFIX, Sampler, training_field_names

    cfg, _, world, _, out, _ = tiny_run
    cfg = TrainConfig(**{**TINY, "shadow_share": 1.0, "p_language": 0.0, "practice_share": 0.0, "zero_own": 0.0})
    names = training_field_names(cfg)
    field_of = {n: i for i, n in enumerate(names)}
    sampler = Sampler(world, Encoder(load_tokenizer(out)), cfg, field_of)
    sampler.rng = random.Random(3)
    sampler.draw_shadows(0)
    changed = {d: [f for f in facts if f.changed] for d, facts in sampler.shadow.items()}
    assert all(changed.values())  # at least half of every domain re-drawn
    seqs, scale = sampler.batch(32, len(names), field_of[RESERVE_FIELD])
    shadow_ids = {field_of[SHADOW_PREFIX + d]: d for d in sampler.shadow}
    for s, sc in zip(seqs, scale):
        assert s.field in shadow_ids  # shadow_share 1: every fact sequence reads a shadow
        d = shadow_ids[s.field]
        assert sc[field_of[d]] == 0 and sc[s.field] == 1
        assert all(sc[i] == 0 for i in shadow_ids if i != s.field)
    # the counterfactual answers are what the shadow sequences teach
    tok = load_tokenizer(out)
    text = " ".join(tok.decode(s.ids) for s in seqs)
    assert any(f.answer.strip() in text for fs in changed.values() for f in fs)
    # a new round draws other answers
    again = Sampler(world, Encoder(tok), cfg, field_of)
    again.draw_shadows(1)
    assert any([f.answer for f in again.shadow[d]] != [f.answer for f in sampler.shadow[d]] for d in sampler.shadow)


def test_memory_readout_loss_reaches_the_memory_and_names_answers():
    from lokiserve.train.trainer import capture_last_memory, memory_readout_loss

    model = make_model()
    x = torch.randint(0, 97, (2, 6))
    targets = torch.randint(0, 97, (2, 6))
    mask = torch.zeros(2, 6, dtype=torch.bool)
    mask[:, 3] = True
    with capture_last_memory(model) as box:
        model(x)
    loss = memory_readout_loss(model, box["m"], targets, mask)
    assert box["m"].shape == (2, 6, model.config.hidden_size) and torch.isfinite(loss) and loss > 0
    loss.backward()
    last = model.memory_modules()[max(model.memory_modules())]
    assert last.values.grad.abs().sum() > 0 and last.out.weight.grad.abs().sum() > 0
    assert float(memory_readout_loss(model, box["m"], targets, torch.zeros_like(mask))) == 0.0


def test_practice_episode_trains_only_the_practice_field(tiny_run):
    """The frozen-backbone episode changes the practice (reserve) slice of the
    memory and nothing else."""
    from lokiserve.train.data import Encoder
    from lokiserve.train.tokenizer import load_tokenizer
    from lokiserve.train.trainer import Sampler, practice_episode, training_field_names
    from lokiserve.train.world import practice_facts

    cfg, _, world, _, out, _ = tiny_run
    model = load_model(out)
    names = training_field_names(cfg)
    field_of = {n: i for i, n in enumerate(names)}
    reserve = field_of[RESERVE_FIELD]
    sampler = Sampler(world, Encoder(load_tokenizer(out)), cfg, field_of)
    sampler.practice = practice_facts(world, 0, 4)
    from lokiserve.train.tokenizer import special_ids
    from lokiserve.train.trainer import reinit_field

    reinit_field(model, reserve, torch.Generator().manual_seed(0))  # the reserve ships zeroed: fresh memory
    ref = {n: t.clone() for n, t in model.state_dict().items()}
    model.train()
    loss = practice_episode(model, sampler, reserve, special_ids(load_tokenizer(out)), cfg, 0, 3)
    assert loss > 0
    for n, t in model.state_dict().items():
        if n.endswith((".keys", ".values")) and ".kmm." in n:
            others = [i for i in range(t.shape[0]) if i != reserve]
            assert torch.equal(t[others], ref[n][others]), n
            assert not torch.equal(t[reserve], ref[n][reserve]), n
        else:
            assert torch.equal(t, ref[n]), n
    assert all(p.requires_grad for p in model.parameters())  # flags restored


FIELD_ARGS = ["--facts", "f.jsonl", "--field", "x", "--out", "o"]


@pytest.mark.parametrize("command, flag, value, words", [
    ("train-demo", "--steps", "0", "must be >= 1"),
    ("train-demo", "--lr", "-1e-3", "must be > 0"),
    ("train-demo", "--memory-lr", "nan", "must be > 0"),
    ("train-demo", "--shadow-share", "1.5", "<= 1"),
    ("train-demo", "--memory-readout-weight", "-0.5", "must be >= 0"),
    ("train-demo", "--practice-episode-steps", "-1", "must be >= 0"),
    ("train-demo", "--practice-every", "0", "must be >= 1"),
    ("train-demo", "--retrieval-weight", "-1", "must be >= 0"),
    ("train-demo", "--batch-size", "eight", "is not a int"),
    ("train-field", "--retain-share", "-0.1", "must be >= 0"),
    ("train-field", "--readout-weight", "inf", "must be >= 0"),
    ("train-field", "--steps", "0", "must be >= 1"),
])
def test_training_flags_refuse_bad_numbers_before_any_work(command, flag, value, words, capsys, tmp_path):
    """Out-of-range or non-finite values stop at parse time (exit 2) with the
    flag named; nothing is trained or written."""
    from lokiserve.cli import main

    where = ["--out", str(tmp_path / "demo"), "--run-dir", str(tmp_path / "run")] if command == "train-demo" else FIELD_ARGS
    with pytest.raises(SystemExit) as exc:
        main([command, *where, f"{flag}={value}"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and words in err, err
    assert not any(tmp_path.iterdir())


# --------------------------------------------------------------------------- bound slots (the shipped scheme)


@pytest.fixture(scope="module")
def bound_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("bound")
    cfg = TrainConfig(steps=40, **{**TINY, "bound_slots": True, "eval_every": 20})
    model, world, tok, info = train_backbone(cfg, root / "run", resume=False, progress=False, log=lambda *_: None)
    out = save_demo(model, world, root / "run", root / "model", info["value_codebook"])
    return cfg, world, info, out


def _answer_id(tok, answer: str) -> int:
    from lokiserve.train.tokenizer import encode

    return encode(tok, answer)[0]  # a bound slot stores the answer's first token


def test_bound_training_lowers_the_loss_and_stores_every_answer_in_its_slot(bound_run):
    """Fact i of a domain sits in slot i of its field; its value (every KMM
    layer) is the answer's row of the shipped codebook; the null slot and the
    slots after the facts are empty; the codebook ships with the model."""
    from lokiserve.train.tokenizer import load_tokenizer
    from lokiserve.train.trainer import VALUE_CODEBOOK, load_codebook, null_slot
    from lokiserve.train.world import TRAINED_DOMAINS

    cfg, world, info, out = bound_run
    losses = [h["loss"] for h in info["history"]]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.5
    assert json.loads((out / "config.json").read_text())["kmm_value_codebook"] == VALUE_CODEBOOK
    codebook = load_codebook(out / VALUE_CODEBOOK)
    tok = load_tokenizer(out)
    assert codebook.shape == (tok.get_vocab_size(), cfg.kmm_value_dim)
    model = load_model(out)
    for d in TRAINED_DOMAINS:
        f = model.field_index(d)
        facts = world.by_domain(d)
        want = codebook[[_answer_id(tok, x.answer) for x in facts]]
        for mem in model.memory_modules().values():
            torch.testing.assert_close(mem.values[f, : len(facts)], want, rtol=0, atol=0)
            assert not mem.values[f, len(facts):].any()
            assert null_slot(mem.values.shape[1]) >= len(facts)
    assert model.export_field(RESERVE_FIELD).is_empty()


def test_bound_sampler_states_a_new_random_world_each_draw_and_binds_slots(bound_run):
    import random

    from lokiserve.train.data import Encoder, make_batch
    from lokiserve.train.tokenizer import load_tokenizer, special_ids
    from lokiserve.train.trainer import Sampler, slot_answer_ids, training_field_names

    cfg, world, _, out = bound_run
    tok = load_tokenizer(out)
    names = training_field_names(cfg)
    field_of = {n: i for i, n in enumerate(names)}
    sampler = Sampler(world, Encoder(tok), cfg, field_of)
    sampler.rng = random.Random(5)
    sampler.redraw()
    first = {d: [f.answer for f in facts] for d, facts in sampler.current.items()}
    sampler.redraw()
    second = {d: [f.answer for f in facts] for d, facts in sampler.current.items()}
    assert first != second
    for d, facts in sampler.current.items():  # every answer stays in its relation's answer set
        for new, real in zip(facts, world.by_domain(d)):
            assert (new.entity, new.relation) == (real.entity, real.relation)
            assert new.answer in {x.answer for x in world.by_domain(d) if x.relation == real.relation}
    ids = slot_answer_ids(sampler.enc, sampler.bound_worlds(), len(names), cfg.kmm_slots_per_field)
    seqs, scale = sampler.batch(24, len(names), field_of[RESERVE_FIELD])
    sp = special_ids(tok)
    batch = make_batch(seqs, len(names), sp["pad"], sp["abstain"], scale, 0.2)
    bound = 0
    for b, s in enumerate(seqs):
        for t, slot in s.slots:  # the bound position predicts the answer stored in that slot
            assert batch["slot_targets"][b, t] == slot
            assert batch["input_ids"][b, t + 1] == ids[s.field, slot]
            bound += 1
    assert bound > 0


def test_retrieval_loss_names_the_own_slot_and_the_null_slot_elsewhere():
    from lokiserve.train.fastkmm import fast_kmm, token_mask
    from lokiserve.train.trainer import bound_values, null_slot, retrieval_loss

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

    def loss():
        with fast_kmm(model), token_mask(model, batch["mask"]), bound_values(model, None):
            model(x)
            return retrieval_loss(model, batch)

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
    with torch.no_grad(), fast_kmm(model), token_mask(model, batch["mask"]), bound_values(model, None):
        model(x)
        for m in mems:
            q = m._queries.view(2, 5, m.heads, -1)
            top0 = torch.einsum("hd,fnd->hfn", q[0, 3], m.keys).argmax(-1)  # (H, F)
            assert (top0[:, 0] == 2).all() and (top0[:, 1:] == null_slot(N)).all()


def test_bound_edit_writes_values_of_the_named_field_only(bound_run, tmp_path):
    """An edit of a bound-slot field is written, not trained: the slot each
    edited prompt reads gets the new answer's codebook row (a fact that shared
    its slot with another answer moves to a free slot, and only then are the
    field's keys refitted); every other field and tensor stays bit-identical,
    and the null slot stays empty."""
    from lokiserve.train.field_training import read_slots, train_field
    from lokiserve.train.tokenizer import load_tokenizer
    from lokiserve.train.trainer import VALUE_CODEBOOK, load_codebook, null_slot

    _, world, _, out = bound_run
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


def test_bound_new_field_fits_keys_to_the_frozen_queries(bound_run, tmp_path):
    """A new domain in the empty field: fact i in slot i with its codebook
    value, keys fitted to the frozen model's queries (the fit lowers its loss;
    the other domains' prompts read the null slot), nothing else in the model
    changes. (This 40-step model's queries barely tell entities apart, so
    finding the facts is measured on the demo model, not here.)"""
    from lokiserve.train.field_training import train_field

    _, world, _, out = bound_run
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


def test_free_value_options_need_no_bound_slots(capsys, tmp_path):
    from lokiserve.cli import main

    for flag in (["--shadow-share", "0.4"], ["--practice-episode-steps", "5"]):
        assert main(["train-demo", *flag, "--run-dir", str(tmp_path / "r"), "--out", str(tmp_path / "o")]) == 2
        assert "--no-bound-slots" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
