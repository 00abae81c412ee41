"""Calibration text generated here, never downloaded: factual sentences and
questions about countries and chemical elements, the kind of text a fact
field will be written against.

Two products: ``calibration_texts`` (statistics of the read path: latent and
attention-output covariances) and ``fact_prompts`` (several phrasings of the
same question, to measure whether memory queries tell facts apart while
ignoring phrasing).
"""

from __future__ import annotations

COUNTRIES = [  # (country, capital, language, continent)
    ("France", "Paris", "French", "Europe"), ("Germany", "Berlin", "German", "Europe"),
    ("Italy", "Rome", "Italian", "Europe"), ("Spain", "Madrid", "Spanish", "Europe"),
    ("Portugal", "Lisbon", "Portuguese", "Europe"), ("Poland", "Warsaw", "Polish", "Europe"),
    ("Greece", "Athens", "Greek", "Europe"), ("Sweden", "Stockholm", "Swedish", "Europe"),
    ("Norway", "Oslo", "Norwegian", "Europe"), ("Finland", "Helsinki", "Finnish", "Europe"),
    ("Hungary", "Budapest", "Hungarian", "Europe"), ("Austria", "Vienna", "German", "Europe"),
    ("Japan", "Tokyo", "Japanese", "Asia"), ("China", "Beijing", "Chinese", "Asia"),
    ("India", "New Delhi", "Hindi", "Asia"), ("Thailand", "Bangkok", "Thai", "Asia"),
    ("Vietnam", "Hanoi", "Vietnamese", "Asia"), ("Turkey", "Ankara", "Turkish", "Asia"),
    ("Egypt", "Cairo", "Arabic", "Africa"), ("Kenya", "Nairobi", "Swahili", "Africa"),
    ("Nigeria", "Abuja", "English", "Africa"), ("Morocco", "Rabat", "Arabic", "Africa"),
    ("Brazil", "Brasilia", "Portuguese", "South America"), ("Argentina", "Buenos Aires", "Spanish", "South America"),
    ("Peru", "Lima", "Spanish", "South America"), ("Chile", "Santiago", "Spanish", "South America"),
    ("Canada", "Ottawa", "English", "North America"), ("Mexico", "Mexico City", "Spanish", "North America"),
    ("Australia", "Canberra", "English", "Oceania"), ("New Zealand", "Wellington", "English", "Oceania"),
]

ELEMENTS = [  # (element, symbol, atomic number)
    ("hydrogen", "H", 1), ("helium", "He", 2), ("lithium", "Li", 3), ("carbon", "C", 6),
    ("nitrogen", "N", 7), ("oxygen", "O", 8), ("fluorine", "F", 9), ("neon", "Ne", 10),
    ("sodium", "Na", 11), ("magnesium", "Mg", 12), ("aluminium", "Al", 13), ("silicon", "Si", 14),
    ("sulfur", "S", 16), ("chlorine", "Cl", 17), ("potassium", "K", 19), ("calcium", "Ca", 20),
    ("iron", "Fe", 26), ("copper", "Cu", 29), ("zinc", "Zn", 30), ("silver", "Ag", 47),
    ("tin", "Sn", 50), ("iodine", "I", 53), ("gold", "Au", 79), ("mercury", "Hg", 80),
    ("lead", "Pb", 82), ("uranium", "U", 92),
]

COUNTRY_SENTENCES = [
    "The capital of {0} is {1}.",
    "{1} is the capital city of {0}.",
    "People in {0} mostly speak {2}.",
    "The official language of {0} is {2}.",
    "{0} is a country in {3}.",
    "What is the capital of {0}?",
    "Which language is spoken in {0}?",
    "Last summer we travelled to {1}, the capital of {0}.",
]

ELEMENT_SENTENCES = [
    "The chemical symbol of {0} is {1}.",
    "{0} has the atomic number {2}.",
    "The element with atomic number {2} is {0}.",
    "What is the chemical symbol for {0}?",
    "In the periodic table, {1} stands for {0}.",
]

# Phrasings of one question, each ending where the answer would start: the
# memory query read at the last token must identify the fact (subject and
# relation) whatever the wording, which is what a fact field's key must match.
FACT_PHRASINGS = {
    "capital": ["The capital of {} is", "The capital city of {} is called", "{}'s capital is the city of",
                "Q: Which city is the capital of {}? A:"],
    "language": ["The official language of {} is", "In {}, most people speak", "The language spoken in {} is",
                 "Q: Which language do people speak in {}? A:"],
    "symbol": ["The chemical symbol of {} is", "The element {} has the symbol", "In chemistry, {} is written as",
               "Q: What is the chemical symbol for {}? A:"],
}
def calibration_texts() -> list[str]:
    """Every template filled with every subject, in a fixed order (deterministic)."""
    texts = [t.format(*row) for row in COUNTRIES for t in COUNTRY_SENTENCES]
    texts += [t.format(name.capitalize() if t.startswith("{0}") else name, sym, num)
              for name, sym, num in ELEMENTS for t in ELEMENT_SENTENCES]
    return texts


def fact_prompts() -> dict[str, list[str]]:
    """fact id ("capital:France") -> its phrasings, each ending before the answer."""
    rows = {"capital": [c[0] for c in COUNTRIES], "language": [c[0] for c in COUNTRIES],
            "symbol": [e[0] for e in ELEMENTS]}
    return {f"{rel}:{s}": [p.format(s) for p in FACT_PHRASINGS[rel]] for rel, subjects in rows.items() for s in subjects}


__all__ = ["calibration_texts", "fact_prompts"]
