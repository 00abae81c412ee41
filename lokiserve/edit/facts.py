"""The facts format: what a user asks a field to know.

One JSON object per line (JSONL), the shape of CounterFact's
``requested_rewrite`` / ``paraphrase_prompts`` / ``neighborhood_prompts`` so
that EasyEdit users feel at home::

    {"prompt": "The capital of France is", "answer": "Rome",
     "subject": "France",                               # optional
     "paraphrases": ["In Europe, France's capital is"], # optional: must give the new answer too
     "neighbors": [{"prompt": "The capital of Spain is", "answer": "Madrid"}]}  # optional: must not change

``answer`` is any non-empty string, one token or many. It continues the
prompt after one space unless it starts with whitespace itself (the demo's
files write " Paris"; CounterFact writes "Paris"). ``subject`` (CounterFact's
name; the demo's ``entity`` is read as its alias) is the part of the prompt
the fact is about; it must occur in the prompt and in every paraphrase. When
given, the field is read at the subject's last token (ROME's key position),
so that paraphrases that mention the subject read it too; without it, at the
prompt's last token. Other keys are kept and ignored.

Every row is checked; an error names the line and the problem, and nothing is
written from a file with a bad row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

MAX_FACTS = 5000
MAX_TEXT_CHARS = 2000
MAX_LIST = 32


class FactsError(ValueError):
    """A facts file or body that cannot be used; the message names the row."""


@dataclass(frozen=True)
class Neighbor:
    prompt: str
    answer: str


@dataclass(frozen=True)
class Fact:
    prompt: str
    answer: str
    subject: str | None = None
    paraphrases: tuple[str, ...] = ()
    neighbors: tuple[Neighbor, ...] = ()
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def as_row(self) -> dict:
        row = {"prompt": self.prompt, "answer": self.answer}
        if self.subject is not None:
            row["subject"] = self.subject
        if self.paraphrases:
            row["paraphrases"] = list(self.paraphrases)
        if self.neighbors:
            row["neighbors"] = [{"prompt": n.prompt, "answer": n.answer} for n in self.neighbors]
        return row


def _text(value, what: str, where: str, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise FactsError(f"{where}: {what} must be a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise FactsError(f"{where}: {what} is empty")
    if len(value) > MAX_TEXT_CHARS:
        raise FactsError(f"{where}: {what} is {len(value)} characters (at most {MAX_TEXT_CHARS})")
    if "\x00" in value:
        raise FactsError(f"{where}: {what} contains a NUL character")
    return value


def _list(value, what: str, where: str) -> list:
    if not isinstance(value, list):
        raise FactsError(f"{where}: {what} must be a list, got {type(value).__name__}")
    if len(value) > MAX_LIST:
        raise FactsError(f"{where}: {what} has {len(value)} entries (at most {MAX_LIST})")
    return value


def parse_fact(row, where: str = "fact") -> Fact:
    """One row (a decoded JSON object) -> Fact, or FactsError naming the problem."""
    if not isinstance(row, dict):
        raise FactsError(f"{where}: a fact must be a JSON object, got {type(row).__name__}")
    for key in ("prompt", "answer"):
        if key not in row:
            raise FactsError(f"{where}: missing {key!r}")
    prompt = _text(row["prompt"], "'prompt'", where)
    answer = _text(row["answer"], "'answer'", where)
    subject = row.get("subject", row.get("entity"))
    if subject is not None:
        subject = _text(subject, "'subject'", where)
        if subject not in prompt:
            raise FactsError(f"{where}: subject {subject!r} does not occur in the prompt {prompt!r}")
    paraphrases = tuple(_text(p, f"paraphrases[{i}]", where)
                        for i, p in enumerate(_list(row.get("paraphrases", []), "'paraphrases'", where)))
    if subject is not None:
        for i, p in enumerate(paraphrases):
            if subject not in p:
                raise FactsError(f"{where}: subject {subject!r} does not occur in paraphrases[{i}] {p!r}")
    neighbors = []
    for i, n in enumerate(_list(row.get("neighbors", []), "'neighbors'", where)):
        if not isinstance(n, dict) or "prompt" not in n or "answer" not in n:
            raise FactsError(f"{where}: neighbors[{i}] must be an object with 'prompt' and 'answer'")
        neighbors.append(Neighbor(_text(n["prompt"], f"neighbors[{i}].prompt", where),
                                  _text(n["answer"], f"neighbors[{i}].answer", where)))
    extra = {k: v for k, v in row.items() if k not in {"prompt", "answer", "subject", "paraphrases", "neighbors"}}
    return Fact(prompt, answer, subject, paraphrases, tuple(neighbors), extra)


def parse_facts(rows: Iterable, source: str = "facts") -> list[Fact]:
    """Decoded rows -> facts; refuses none, too many, and two facts with one prompt."""
    facts = []
    seen: dict[str, int] = {}
    for n, row in enumerate(rows, 1):
        if n > MAX_FACTS:
            raise FactsError(f"{source}: more than {MAX_FACTS} facts in one write")
        fact = parse_fact(row, f"{source}:{n}")
        if fact.prompt in seen:
            raise FactsError(f"{source}:{n}: the prompt {fact.prompt!r} is already fact {seen[fact.prompt]}")
        seen[fact.prompt] = n
        facts.append(fact)
    if not facts:
        raise FactsError(f"{source}: no facts")
    return facts


def _json_rows(lines: Iterable[str], source: str):
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line, parse_constant=lambda c: (_ for _ in ()).throw(FactsError(c)))
        except FactsError as exc:
            raise FactsError(f"{source}:{n}: {exc} is not valid JSON") from None
        except json.JSONDecodeError as exc:
            raise FactsError(f"{source}:{n}: not JSON ({exc.msg} at column {exc.colno})") from None
        yield row


def loads_facts(text: str, source: str = "body") -> list[Fact]:
    """Facts from JSONL text, or from one JSON list / ``{"facts": [...]}`` object."""
    stripped = text.strip()
    if stripped.startswith("[") or (stripped.startswith("{") and "\n" not in stripped and '"facts"' in stripped):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise FactsError(f"{source}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
        if isinstance(data, dict):
            data = data.get("facts")
        if not isinstance(data, list):
            raise FactsError(f"{source}: expected a list of facts or {{\"facts\": [...]}}")
        return parse_facts(data, source)
    return parse_facts(_json_rows(text.splitlines(), source), source)


def read_facts_file(path: str | Path) -> list[Fact]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FactsError(f"{path}: no such facts file") from None
    except UnicodeDecodeError as exc:
        raise FactsError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return loads_facts(text, str(path))


def continuation(prompt: str, answer: str) -> str:
    """The text that follows the prompt: the answer after one space, unless
    either side already supplies the whitespace."""
    if answer[:1].isspace() or prompt[-1:].isspace():
        return answer
    return " " + answer


__all__ = ["Fact", "Neighbor", "FactsError", "parse_fact", "parse_facts", "loads_facts", "read_facts_file",
           "continuation", "MAX_FACTS"]
