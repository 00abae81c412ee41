"""Generic contexts for a subject and generic text that mentions none.

ROME computes a subject's key as the average over many random prefixes,
because one prompt's representation of the subject also carries that
prompt's wording. The writer does the same for its fitted keys: the
subject, placed in these neutral contexts, gives the positives that teach
a key *the subject* rather than one sentence (measured on SmolLM2: keys
fitted to the prompt and one paraphrase alone fired on neither the held-out
paraphrase nor, wrongly, only on those two sentences).

``UNRELATED`` is text the project writes itself, with no fact subject in
it: the first half are negatives while keys are fitted, the second half is
held out to measure the next-token distribution before and after an edit.
"""

from __future__ import annotations

SUBJECT_CONTEXTS = (
    "About {s}",
    "Here is a fact about {s}",
    "Tell me about {s}",
    "I read a short article about {s}",
    "Question: what do you know about {s}",
    "The topic of today's lesson is {s}",
    "Notes on {s}",
    "Many people have heard of {s}",
    "A quiz question about {s}",
    "Some facts: {s}",
    "We talked about {s}",
    "In the encyclopedia entry on {s}",
    "Everyone has heard of {s}",
    "Here is what I learned about {s}",
    "Trivia: {s}",
)

UNRELATED = (
    "The recipe calls for two cups of flour, a pinch of salt and some warm water.",
    "She opened the window because the room was getting too warm.",
    "To install the package, run the setup script and then restart the terminal.",
    "The meeting has been moved to Thursday afternoon at three o'clock.",
    "He likes to go running in the park early in the morning.",
    "A good night's sleep helps you concentrate the next day.",
    "The train was late again, so we decided to take a taxi instead.",
    "Please remember to water the plants while I am away.",
    "The children built a small castle out of sand and shells.",
    "This function returns the sum of all the numbers in the list.",
    "It rained all weekend, and the garden finally looks green again.",
    "Our team won the match after a long and difficult second half.",
    "The library is open from nine in the morning until eight at night.",
    "I usually drink a cup of tea before I start working.",
    "The new phone has a bigger screen and a better camera.",
    "Add the onions to the pan and cook them until they are soft.",
    "The museum offers free entry on the first Sunday of every month.",
    "My brother is learning to play the guitar this year.",
    "Write a short story about a dog who finds a lost key.",
    "The store closes early on holidays, so plan your shopping ahead.",
    "Once upon a time, a small boat sailed across a quiet lake.",
    "The price of the tickets went up by ten percent this season.",
    "Turn left at the second traffic light and park behind the building.",
    "The teacher asked the students to read the first chapter at home.",
    "def add(a, b):\n    return a + b",
    "Thank you for your message; I will reply as soon as I can.",
    "The cat slept on the warm windowsill for most of the afternoon.",
    "Mix the paint well before you apply the first coat to the wall.",
    "The bus stops right in front of the old post office.",
    "He forgot his umbrella and came home completely wet.",
    "The report is due at the end of the month, so start early.",
    "We watched a funny movie and ate far too much popcorn.",
)


def subject_contexts(subject: str) -> list[str]:
    return [c.format(s=subject) for c in SUBJECT_CONTEXTS]


def unrelated_split() -> tuple[list[str], list[str]]:
    """(negatives for fitting, held out for measuring)."""
    half = len(UNRELATED) // 2
    return list(UNRELATED[:half]), list(UNRELATED[half:])


__all__ = ["SUBJECT_CONTEXTS", "UNRELATED", "subject_contexts", "unrelated_split"]
