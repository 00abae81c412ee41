"""The shipped demo model (issue 3): files, size, and `lokiserve eval` reproducing bench/results/demo_*.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lokiserve.cli import main
from lokiserve.memory import read_field
from lokiserve.train.world import NEW_DOMAIN, RESERVE_FIELD, read_facts

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "memories" / "demo"
BENCH = ROOT / "bench" / "results"
EDIT_DOMAIN = "geography"
EDIT_FACTS = DEMO / "edits" / f"{EDIT_DOMAIN}.jsonl"
EDIT_FIELD = DEMO / "edits" / f"{EDIT_DOMAIN}.safetensors"
NEW_FACTS = DEMO / "new" / f"{NEW_DOMAIN}.jsonl"
NEW_FIELD = DEMO / "new" / f"{NEW_DOMAIN}.safetensors"


@pytest.fixture(scope="module")
def model():
    from lokiserve.train.checkpoint import load_model

    return load_model(DEMO)


def _eval(tmp_path, *args) -> dict:
    out = tmp_path / "eval.json"
    assert main(["eval", "--model", str(DEMO), *args, "--json", str(out)]) == 0
    return json.loads(out.read_text())


def _recorded(name: str) -> dict:
    return json.loads((BENCH / name).read_text())


def _counts(result: dict) -> dict:
    out = {d: (r["correct"], r["total"]) for d, r in result["domains"].items()}
    out.update({g: (r["correct"], r["total"]) for g, r in result.get("groups", {}).items()})
    return out


def test_shipped_files_exist_and_fit():
    for name in ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                 "tokenizer_config.json", "world.jsonl", "README.md"):
        assert (DEMO / name).is_file(), name
    for path in (EDIT_FACTS, EDIT_FIELD, NEW_FACTS, NEW_FIELD):
        assert path.is_file(), path
    size = sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file())
    assert size <= 30 * 1024 * 1024, size
    cfg = json.loads((DEMO / "config.json").read_text())
    assert cfg["head_dim"] in (64, 128)
    assert cfg["kmm_field_names"][-1] == RESERVE_FIELD
    rows = read_facts(DEMO / "world.jsonl")
    assert {r["field"] for r in rows} == set(cfg["kmm_field_names"]) - {RESERVE_FIELD}
    # the value codebook the fields are written from, out of vLLM's reach (it loads top-level *.safetensors)
    assert (DEMO / cfg["kmm_value_codebook"]).is_file() and "/" in cfg["kmm_value_codebook"]
    assert [p.name for p in DEMO.glob("*.safetensors")] == ["model.safetensors"]


def test_shipped_reserve_field_is_empty_and_field_files_fit(model):
    assert model.field_state(RESERVE_FIELD) == "zeroed"
    assert model.export_field(RESERVE_FIELD).is_empty()
    for path, fid in ((EDIT_FIELD, EDIT_DOMAIN), (NEW_FIELD, RESERVE_FIELD)):
        fld = read_field(path)
        fld.check_compatible(model.config.memory_geometry, model.backbone_hash())
        assert fld.name == fid


def test_greedy_generate_agrees_with_the_batched_evaluator(model):
    from lokiserve.train.evaluate import fact_correct, generate_check
    from lokiserve.train.tokenizer import load_tokenizer

    tok = load_tokenizer(DEMO)
    rows = read_facts(DEMO / "world.jsonl")[::40]
    zeroed = [dict(r) for r in rows[:4]]
    for r in zeroed:
        r["answer"] = " wrong"
    rows = rows + zeroed
    assert fact_correct(model, tok, rows) == generate_check(model, tok, rows)


def test_eval_reproduces_recorded_all_fields(tmp_path):
    assert _counts(_eval(tmp_path)) == _counts(_recorded("demo_eval.json"))


def test_eval_reproduces_recorded_edit(tmp_path):
    got = _eval(tmp_path, "--facts", str(DEMO / "world.jsonl"), "--facts", str(EDIT_FACTS),
                "--apply", f"{EDIT_DOMAIN}={EDIT_FIELD}")
    assert _counts(got) == _counts(_recorded("demo_edit.json"))
    assert f"{EDIT_DOMAIN}/changed" in got["groups"]


def test_eval_reproduces_recorded_new_domain(tmp_path):
    got = _eval(tmp_path, "--facts", str(DEMO / "world.jsonl"), "--facts", str(NEW_FACTS),
                "--apply", f"{RESERVE_FIELD}={NEW_FIELD}")
    assert _counts(got) == _counts(_recorded("demo_new.json"))
    assert NEW_DOMAIN in got["domains"]


def test_eval_reproduces_recorded_ablation(tmp_path):
    got = _eval(tmp_path, "--ablation")
    assert got["ablation"]["accuracy"] == _recorded("demo_ablation.json")["ablation"]["accuracy"]


def test_zeroing_a_field_via_cli_matches_the_ablation_row(tmp_path):
    got = _eval(tmp_path, "--zero", "people")
    row = _recorded("demo_ablation.json")["ablation"]["accuracy"]["people"]
    assert {d: r["accuracy"] for d, r in got["domains"].items()} == row


def test_recorded_numbers_meet_the_targets():
    """Issue 3's targets, on the recorded numbers of the shipped files (which the
    tests above reproduce with `lokiserve eval`). "Stay correct" for the other
    domains: at least 98%, or, for a domain below 98% with all fields, no fact lost."""
    base = {d: r["accuracy"] for d, r in _recorded("demo_eval.json")["domains"].items()}
    assert len(base) >= 4 and min(base.values()) >= 95
    table = _recorded("demo_ablation.json")["ablation"]["accuracy"]
    for field, row in table.items():
        if field in ("none", RESERVE_FIELD):
            assert all(abs(row[d] - base[d]) <= 2 for d in base)
            continue
        assert row[field] <= 10
        assert all(abs(row[d] - base[d]) <= 2 for d in base if d != field)
    edit = _recorded("demo_edit.json")
    assert edit["groups"][f"{EDIT_DOMAIN}/changed"]["accuracy"] >= 95
    assert edit["groups"][f"{EDIT_DOMAIN}/unchanged"]["accuracy"] >= 98
    for d, r in edit["domains"].items():
        if d != EDIT_DOMAIN:
            assert r["accuracy"] >= min(98, base[d]), d
    new = _recorded("demo_new.json")
    assert new["domains"][NEW_DOMAIN]["accuracy"] >= 90
    for d, r in new["domains"].items():
        if d != NEW_DOMAIN:
            assert abs(r["accuracy"] - base[d]) <= 2
