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
