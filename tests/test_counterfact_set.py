"""The shipped real-world edit set (``memories/smollm2-counterfact``): every
row parses as lokiserve facts, comes from the hand-written candidates, and
keeps CounterFact's rules (no prompt edited twice, no neighbour about an edit's
own prompt, a counterfactual that differs from the truth)."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter

from lokiserve.edit.facts import read_facts_file
from lokiserve.paths import REPO_ROOT

HERE = REPO_ROOT / "memories" / "smollm2-counterfact"


def _candidates():
    spec = importlib.util.spec_from_file_location("candidates", HERE / "candidates.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_set_holds_over_a_thousand_facts_that_parse_and_follow_the_rules():
    rows = [json.loads(line) for line in (HERE / "facts.jsonl").read_text(encoding="utf-8").splitlines()]
    facts = read_facts_file(HERE / "facts.jsonl")  # the writer's own validation
    assert len(facts) == len(rows) >= 1000
    prompts = [r["prompt"] for r in rows]
    assert len(set(prompts)) == len(prompts)
    neighbor_prompts = {n["prompt"] for r in rows for n in r["neighbors"]}
    assert not neighbor_prompts & set(prompts)
    for r in rows:
        assert r["answer"] != r["original"]
        assert r["subject"] in r["prompt"] and all(r["subject"] in p for p in r["paraphrases"])
        assert len(r["paraphrases"]) == 2 and len(r["neighbors"]) == 2
    assert len(Counter(r["relation"] for r in rows)) >= 20


def test_every_fact_is_a_hand_written_candidate_in_candidate_order():
    cands = _candidates().CANDIDATES
    by_prompt = {c["prompt"]: (i, c) for i, c in enumerate(cands)}
    rows = [json.loads(line) for line in (HERE / "facts.jsonl").read_text(encoding="utf-8").splitlines()]
    order = []
    for r in rows:
        i, c = by_prompt[r["prompt"]]
        assert (c["true"], c["new"], c["subject"], c["paraphrases"], c["neighbors"]) == \
            (r["original"], r["answer"], r["subject"], r["paraphrases"], r["neighbors"])
        order.append(i)
    assert order == sorted(order)
    # No neighbour pool city is an edited subject of the derived city relations.
    subjects = {c["subject"] for c in cands}
    pools = {n["prompt"] for c in cands if c["relation"] in ("city_language", "city_continent")
             for n in c["neighbors"]}
    assert all(not any(p.endswith(f" {s} is") or p.startswith(f"{s} is") for s in subjects) for p in pools)
