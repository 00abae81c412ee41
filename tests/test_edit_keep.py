"""Which edited facts a retain text depends on (``writer.keep_dependents``):
the subject it reads at its end owns it, a subject inside a longer word does
not (it only keeps its group in play with the owner's)."""

from __future__ import annotations

from lokiserve.edit.writer import keep_dependents


def test_a_whole_word_subject_owns_a_text_a_substring_subject_does_not():
    subjects = [(0, "Niger"), (1, "tin"), (2, "Nigeria"), (3, "Argentina")]
    assert keep_dependents("The capital of Nigeria is", subjects) == [2, 0]
    assert keep_dependents("The capital of Argentina is", subjects) == [3, 1]
    assert keep_dependents("The chemical symbol of tin is", subjects) == [1]
    assert keep_dependents("Niger, unlike Nigeria, is", subjects) == [2, 0]  # the subject read last owns it


def test_the_subject_that_ends_last_and_then_the_longest_owns_it():
    subjects = [(0, "Australia"), (1, "Western Australia"), (2, "Perth")]
    assert keep_dependents("The capital of Western Australia is", subjects) == [1, 0]
    assert keep_dependents("Perth is the capital of Australia, and its river is", subjects) == [0, 2]
    assert keep_dependents("Australia", subjects) == [0]
    assert keep_dependents("The capital of Japan is", subjects) == []
    assert keep_dependents("The capital of Peru is", [(5, "Peru"), (6, "Perugia")]) == [5]


def test_held_rows_are_always_measured_and_the_sample_fills_the_rest():
    """``build_checks``: retain rows marked ``held`` (``edit --hold``) are
    all measured, however many ordinary rows the sample would pass over."""
    import pytest

    from tests.engine_utils import DEMO, demo_available

    if not demo_available():
        pytest.skip("needs the shipped demo model's tokenizer")
    from lokiserve.edit.encoding import Codec
    from lokiserve.edit.facts import parse_facts
    from lokiserve.edit.writer import build_checks

    codec = Codec.from_model_dir(DEMO)
    facts = parse_facts([{"prompt": "The capital of Zapaedrer is", "answer": "Siadar"}])
    plain = [{"prompt": f"Row {i} says", "answer": "yes"} for i in range(100)]
    held = [{"prompt": f"Held {i} says", "answer": "no", "held": True} for i in range(3)]
    checks = build_checks(codec, facts, plain + held, None, max_retain=10, unrelated_text=False)
    prompts = [r["prompt"] for r in checks.retain_rows]
    assert len(prompts) == 10 and prompts[:3] == [r["prompt"] for r in held]
    assert len(checks.retain) == 10
    # without the mark, the evenly spaced sample of 10 in 103 leaves the last rows out
    unmarked = build_checks(codec, facts, plain + [{**r, "held": False} for r in held], None, max_retain=10,
                            unrelated_text=False)
    assert not any(r["prompt"].startswith("Held") for r in unmarked.retain_rows)
