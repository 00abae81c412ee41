"""Writing facts: the facts format's errors, the encoding of answers and
subjects, the tie rule the null slot relies on, and ``lokiserve edit`` /
``train-field`` on the shipped demo (refuse with the numbers and no file,
``--force``, the report in the file, only the named field changes)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from lokiserve.edit.encoding import Codec
from lokiserve.edit.facts import FactsError, loads_facts, parse_facts, read_facts_file
from lokiserve.kernels.kmm.naive import select_topk
from lokiserve.memory import read_field
from tests.engine_utils import DEMO, demo_available

GOOD = {"prompt": "The capital of France is", "answer": "Rome", "subject": "France",
        "paraphrases": ["In Europe, the capital of France is"],
        "neighbors": [{"prompt": "The capital of Spain is", "answer": "Madrid"}]}


@pytest.mark.parametrize("row, message", [
    ({"answer": "x"}, "missing 'prompt'"),
    ({"prompt": "a b"}, "missing 'answer'"),
    ({"prompt": "a b", "answer": ""}, "'answer' is empty"),
    ({"prompt": "a b", "answer": 7}, "'answer' must be a string"),
    ({"prompt": "a b" * 2000, "answer": "c"}, "characters"),
    ({"prompt": "a b", "answer": "c", "subject": "z"}, "does not occur in the prompt"),
    ({**GOOD, "paraphrases": ["no subject here"]}, "does not occur in paraphrases"),
    ({**GOOD, "paraphrases": "one string"}, "must be a list"),
    ({**GOOD, "neighbors": [{"prompt": "x"}]}, "neighbors\\[0\\]"),
    ({"prompt": "a\x00b", "answer": "c"}, "NUL"),
    ([1, 2], "must be a JSON object"),
])
def test_bad_rows_name_the_row_and_the_problem(row, message):
    with pytest.raises(FactsError, match=message):
        parse_facts([GOOD | {"prompt": "The capital of Italy is", "subject": "Italy",
                             "paraphrases": [], "neighbors": []}, row], "facts.jsonl")


def test_file_level_errors(tmp_path):
    with pytest.raises(FactsError, match="facts.jsonl:2: not JSON"):
        loads_facts(json.dumps(GOOD) + "\n{oops\n", "facts.jsonl")
    with pytest.raises(FactsError, match="NaN is not valid JSON"):
        loads_facts('{"prompt": "a b", "answer": NaN}')
    with pytest.raises(FactsError, match="no facts"):
        loads_facts("\n\n")
    with pytest.raises(FactsError, match="already fact 1"):
        parse_facts([GOOD, GOOD])
    with pytest.raises(FactsError, match="no such facts file"):
        read_facts_file(tmp_path / "missing.jsonl")
    (tmp_path / "bin.jsonl").write_bytes(b"\xff\xfe")
    with pytest.raises(FactsError, match="not UTF-8"):
        read_facts_file(tmp_path / "bin.jsonl")


def test_good_rows_in_every_accepted_shape():
    one = loads_facts(json.dumps(GOOD))
    assert one[0].subject == "France" and one[0].neighbors[0].answer == "Madrid"
    assert loads_facts(json.dumps([GOOD])) == one == loads_facts(json.dumps({"facts": [GOOD]}))
    demo_row = {"domain": "geography", "field": "geography", "prompt": "The capital of Zap is", "answer": " Siadar",
                "entity": "Zap", "relation": "capital"}
    fact = parse_facts([demo_row])[0]
    assert fact.subject == "Zap" and fact.extra["domain"] == "geography"  # the demo's entity is the subject


@pytest.mark.skipif(not demo_available(), reason="needs the demo tokenizer")
def test_answers_continue_after_one_space_and_subjects_end_where_they_end():
    codec = Codec.from_model_dir(DEMO)
    a = codec.sequence("The capital of Zapaedrer is", "Siadar")
    b = codec.sequence("The capital of Zapaedrer is", " Siadar")
    assert a == b and a.answer and a.ids[: a.answer_start] == tuple(codec.prompt("The capital of Zapaedrer is").ids)
    s = codec.sequence("The capital of Zapaedrer is", "Siadar", subject="Zapaedrer")
    assert codec.decode(s.ids[s.read_at: s.read_at + 1]).strip() in "Zapaedrer"
    assert codec.decode(s.ids[: s.read_at + 1]).endswith("Zapaedrer")
    assert codec.sequence("The capital of Zapaedrer is", "Siadar").read_at == a.answer_start - 1


def test_tied_rows_pick_the_lowest_slots_like_a_stable_sort():
    gen = torch.Generator().manual_seed(0)
    scores = torch.zeros(64, 3, 40)  # a written field: most slots are empty and score exactly 0
    scores[torch.rand(64, 3, 40, generator=gen) < 0.15] = 1.5
    scores[torch.rand(64, 3, 40, generator=gen) < 0.15] = -2.0
    scores[:5] = torch.randn(5, 3, 40, generator=gen)  # rows without ties take torch.topk's path
    top, idx = select_topk(scores, 4)
    ref = torch.sort(scores, dim=-1, descending=True, stable=True)
    # the same slots as a stable sort (the order among equal scores is free: the softmax sum ignores it)
    assert torch.equal(idx.sort(-1).values, ref.indices[..., :4].sort(-1).values)
    assert torch.equal(top, ref.values[..., :4])
    assert torch.equal(scores.gather(-1, idx), top)


needs_demo = pytest.mark.skipif(not demo_available(), reason="needs the shipped demo model")


def _multi_token_names(tmp_path):
    rows = [json.loads(line) for line in (DEMO / "world.jsonl").read_text().splitlines() if line.strip()]
    capitals = [r for r in rows if r["relation"] == "capital"][:8]
    names = ["Old Harbor Town", "Mount Kelvin City", "New Ardent Bay", "Port Quillon Heights", "Upper Silvermoor",
             "East Brightwater", "Lower Fennick Vale", "Saint Orrin Falls"]
    path = tmp_path / "names.jsonl"
    path.write_text("".join(json.dumps({"prompt": r["prompt"], "subject": r["entity"], "answer": n}) + "\n"
                            for r, n in zip(capitals, names)))
    return path


@needs_demo
def test_edit_refuses_a_failing_write_with_numbers_and_no_file_and_force_writes_it(tmp_path, capsys):
    from lokiserve.cli import main

    facts = _multi_token_names(tmp_path)
    out, report = tmp_path / "f.safetensors", tmp_path / "r.json"
    rc = main(["edit", "--facts", str(facts), "--field", "geography", "--out", str(out), "--report", str(report)])
    err = capsys.readouterr().err
    assert rc == 1 and not out.exists()
    assert "refused: efficacy" in err and "No file written" in err
    numbers = json.loads(report.read_text())
    assert numbers["passed"] is False and numbers["efficacy"] < 0.9 and numbers["facts"] == 8
    for kind, rate, checked in (("changed_retain", "retain", "retain_checked"),
                                ("changed_neighbors", "neighbors", "neighbors_checked")):
        # the report names what moved: as many as its rate says (up to 20), each with a different continuation
        moved = round((1 - numbers[rate]) * numbers[checked]) if numbers[rate] is not None else 0
        assert len(numbers[kind]) == min(20, moved), kind
        assert all(c["before"] != c["after"] and c["prompt"] for c in numbers[kind])
    rc = main(["edit", "--facts", str(facts), "--field", "geography", "--out", str(out), "--force"])
    assert rc == 0 and out.exists()
    stored = json.loads(read_field(out).metadata["report"])
    assert stored["passed"] is False and stored["facts"] == 8
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x y"}\n')
    assert main(["edit", "--facts", str(bad), "--field", "geography", "--out", str(tmp_path / "g")]) == 2
    assert "missing 'answer'" in capsys.readouterr().err


@needs_demo
def test_train_field_verifies_the_shipped_edit_and_changes_only_its_field(tmp_path):
    from lokiserve.cli import main
    from lokiserve.train.checkpoint import load_model

    out = tmp_path / "geo.safetensors"
    rc = main(["train-field", "--facts", str(DEMO / "edits" / "geography.jsonl"), "--field", "geography",
               "--out", str(out), "--report", str(tmp_path / "r.json"), "--no-progress"])
    assert rc == 0
    report = json.loads(read_field(out).metadata["report"])
    assert report["passed"] and report["efficacy"] >= 0.95 and report["retain"] >= 0.98
    model = load_model(DEMO)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.apply_field("geography", read_field(out))
    f = model.field_index("geography")
    for name, t in model.state_dict().items():
        if name.endswith(("keys", "values")):
            others = [i for i in range(t.shape[0]) if i != f]
            assert torch.equal(t[others], before[name][others]), name
        elif not name.endswith("enabled"):
            assert torch.equal(t, before[name]), name
    assert load_file(str(DEMO / "model.safetensors")).keys()  # the model directory is untouched


@needs_demo
def test_sequential_edits_keep_the_earlier_ones(tmp_path):
    """Each write starts from the previous field file (--start-from); the
    facts of every earlier write still hold in the last file."""
    from lokiserve.cli import main
    from lokiserve.edit.verify import greedy_hits
    from lokiserve.train.checkpoint import load_model

    rows = [json.loads(line) for line in (DEMO / "world.jsonl").read_text().splitlines() if line.strip()]
    capitals = [r for r in rows if r["relation"] == "capital"][30:34]
    languages = sorted({r["answer"].strip() for r in rows if r["relation"] == "language"})
    facts, prev = [], None
    for k, r in enumerate(capitals):
        fact = {"prompt": r["prompt"], "subject": r["entity"], "answer": languages[k]}
        facts.append(fact)
        path = tmp_path / f"f{k}.jsonl"
        path.write_text(json.dumps(fact) + "\n")
        out = tmp_path / f"field{k}.safetensors"
        argv = ["edit", "--facts", str(path), "--field", "geography", "--out", str(out)]
        assert main(argv + (["--start-from", str(prev)] if prev else [])) == 0
        prev = out
    model = load_model(DEMO)
    model.apply_field("geography", read_field(prev))
    codec = Codec.from_model_dir(DEMO)
    hits = greedy_hits(model, codec, [codec.sequence(f["prompt"], f["answer"], f["subject"]) for f in facts])
    assert all(hits), hits


@needs_demo
def test_continuation_slots_are_keyed_at_the_answers_own_tokens_and_leave_the_model_as_it_was():
    """``WriteOptions.continuation``: one more slot per answer token after the
    first, keyed (in the routing layer only) where the previous answer token
    stands; the model is left exactly as it was."""
    from lokiserve.edit.writer import WriteOptions, _Texts, continuation_units, write_facts
    from lokiserve.train.checkpoint import load_model

    codec = Codec.from_model_dir(DEMO)
    texts = _Texts()
    seqs = [codec.sequence("The capital of Zapaedrer is", "Old Harbor"),
            codec.sequence("Zapaedrer has as its capital", "Old Harbor"),
            codec.sequence("The capital of Zapaedrer is", "Gak")]
    idx = [texts.add(s, "") for s in seqs]
    units = continuation_units(texts, idx, [0, 0, 1])
    n = len(seqs[0].answer)
    assert [(i, j) for i, j, _ in units] == [(0, j) for j in range(1, n)] + \
        [(1, j) for j in range(1, len(seqs[2].answer))]
    assert units[0][2] == [(idx[0], seqs[0].answer_start), (idx[1], seqs[1].answer_start)]

    model = load_model(DEMO)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = [json.loads(line) for line in (DEMO / "world.jsonl").read_text().splitlines() if line.strip()]
    cap = [r for r in rows if r["relation"] == "capital"][:2]
    facts = parse_facts([{"prompt": r["prompt"], "subject": r["entity"], "answer": a}
                         for r, a in zip(cap, ["Old Harbor", "Krakrein Trading"])])
    result = write_facts(model, codec, "geography", facts, retain=rows[:40], options=WriteOptions(
        unrelated_text=False, continuation=True), log=lambda *_: None)
    lengths = [len(codec.sequence(fa.prompt, fa.answer).answer) for fa in facts]
    assert result.report["continuation_slots"] == sum(n - 1 for n in lengths)
    for name, t in model.state_dict().items():
        assert torch.equal(t, before[name]), name  # restored exactly
    f = model.field_index("geography")
    route = min(model.memory_modules())
    for li, mem in model.memory_modules().items():
        changed = (result.field.keys[li] != mem.keys[f]).any(-1)
        # continuation keys only in the routing layer; a bound-slot field keeps its other keys
        assert int(changed.sum()) == (result.report["continuation_slots"] if li == route else 0), li


@needs_demo
def test_hold_measures_and_holds_every_earlier_fact_besides_the_retain_set(tmp_path, capsys):
    """``lokiserve edit --hold FILE``: the earlier writes' facts are held in
    addition to the default retain set, every one of them measured (not left
    to the retain sample), reported as their own group."""
    from lokiserve.cli import main

    rows = [json.loads(line) for line in (DEMO / "world.jsonl").read_text().splitlines() if line.strip()]
    capitals = [r for r in rows if r["relation"] == "capital"][10:13]
    currencies = sorted({r["answer"].strip() for r in rows if r["relation"] == "currency"})
    first = tmp_path / "first.jsonl"
    first.write_text("".join(json.dumps({"prompt": r["prompt"], "subject": r["entity"], "answer": currencies[k]}) + "\n"
                             for k, r in enumerate(capitals[:2])))
    out1, out2, report = tmp_path / "a.safetensors", tmp_path / "b.safetensors", tmp_path / "r.json"
    assert main(["edit", "--facts", str(first), "--field", "geography", "--out", str(out1)]) == 0
    second = tmp_path / "second.jsonl"
    second.write_text(json.dumps({"prompt": capitals[2]["prompt"], "subject": capitals[2]["entity"],
                                  "answer": currencies[5]}) + "\n")
    rc = main(["edit", "--facts", str(second), "--field", "geography", "--out", str(out2), "--start-from", str(out1),
               "--hold", str(first), "--report", str(report)])
    assert rc == 0
    numbers = json.loads(report.read_text())
    assert numbers["retain_by_group"]["held"] == 1.0  # the earlier edits, measured whatever the sample takes
    assert numbers["retain_checked"] == 400 and len(numbers["retain_by_group"]) > 1  # beside the demo's own facts
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": 3}\n')
    assert main(["edit", "--facts", str(second), "--field", "geography", "--out", str(tmp_path / "c"),
                 "--hold", str(bad)]) == 2
    assert "retain row needs" in capsys.readouterr().err


@needs_demo
def test_new_names_in_other_fields_are_written_and_verified_on_the_demo(tmp_path):
    """Answers no relation of the demo's world has: names of 1-4 word pieces
    (drawn here from another seed than the benchmark's, for the elements'
    and people's facts, not capitals), an answer of another domain, in a
    user's own file. Written, verified, and every other fact still right."""
    import random

    from lokiserve.cli import main
    from lokiserve.train.names import NameMaker

    codec = Codec.from_model_dir(DEMO)
    maker = NameMaker(codec.tok, 4)
    rng = random.Random(1234)
    rows = [json.loads(line) for line in (DEMO / "world.jsonl").read_text().splitlines() if line.strip()]
    taken = {r["answer"].strip() for r in rows}
    picked = [r for r in rows if r["domain"] == "elements"][1::17] + [r for r in rows if r["domain"] == "people"][2::19]
    facts, lengths = [], set()
    for i, r in enumerate(picked):
        answer = rows[(7 * i) % 150]["answer"].strip()  # every fourth: a geography answer
        while i % 4 != 3 and answer in taken:  # else a name no fact of the world has
            answer = maker.name(rng)
        lengths.add(len(codec.sequence(r["prompt"], answer).answer))
        facts.append({"prompt": r["prompt"], "subject": r["entity"], "answer": answer, "field": r["field"]})
    assert lengths >= {1, 2, 3}
    for field in ("elements", "people"):
        path = tmp_path / f"{field}.jsonl"
        path.write_text("".join(json.dumps({k: v for k, v in f.items() if k != "field"}) + "\n"
                                for f in facts if f["field"] == field))
        out, report = tmp_path / f"{field}.safetensors", tmp_path / f"{field}.json"
        rc = main(["edit", "--facts", str(path), "--field", field, "--out", str(out), "--report", str(report)])
        numbers = json.loads(report.read_text())
        assert rc == 0 and out.exists(), numbers
        assert numbers["efficacy"] == 1.0 and numbers["retain"] >= 0.98, numbers


def test_a_word_end_target_needs_the_continuing_tokens():
    from lokiserve.edit.encoding import Sequence
    from lokiserve.edit.values import WORD_END, ValueConfig, solve_values
    from tests.conftest import make_model

    model = make_model()
    seq = Sequence((1, 5, 6, 7), 2, 1)
    with pytest.raises(ValueError, match="WORD_END"):
        solve_values(model, 0, {min(model.memory_modules()): [torch.tensor([0])]}, [seq], [0], ValueConfig(steps=1),
                     targets=[(6, 7, WORD_END)])
