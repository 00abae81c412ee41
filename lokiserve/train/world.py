"""A synthetic knowledge world, deterministic from a seed.

Every entity and every answer is an invented word, so no fact has a prior and
an edit is never fighting "real" knowledge. The world has several *domains*;
each domain is bound to one KMM field (``Fact.field``). Every fact is stored
three ways:

* ``prompt`` + ``answer``: the query the evaluator asks (greedy decode of the
  answer continuation must equal ``answer`` exactly);
* ``sentences``: the training sentences, one per phrasing template, each
  split as ``(before, answer, after)`` so the trainer knows exactly which
  tokens are the answer.

Answers always start with a space and are single invented words, so that
byte-level BPE tokenises them as 1-3 word tokens in every context.

Besides the four shipped domains there is a fifth schema, ``creatures``,
used in two ways: during backbone training a *practice* instance of it (fresh
entities, re-drawn every few hundred steps) lives in the reserve field, so
that reading a freshly trained field is a learned skill; the shipped
new-domain field is another, never-seen instance of it (new entities and
answers), written into the empty reserve slot with the backbone frozen.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

# --------------------------------------------------------------------------- words

ONSETS = "b d f g k l m n p r s t v z th dr kr br st gl sk pl tr gr".split()
VOWELS = "a e i o u a e o ae ia ou ei".split()
CODAS = ["", "", "", "n", "r", "s", "th", "l", "x", "m"]


class WordMaker:
    """Pronounceable invented words, unique across the whole world."""

    def __init__(self, rng: random.Random, used: set[str] | None = None):
        self.rng = rng
        self.used: set[str] = used if used is not None else set()

    def word(self, syllables: tuple[int, int] = (2, 3), suffix: str = "", lower: bool = False) -> str:
        rng = self.rng
        for _ in range(10000):
            n = rng.randint(*syllables)
            w = "".join(rng.choice(ONSETS) + rng.choice(VOWELS) for _ in range(n)) + rng.choice(CODAS)
            w = w + suffix
            w = w.lower() if lower else w.capitalize()
            if w.lower() not in self.used and len(w) <= 12:
                self.used.add(w.lower())
                return w
        raise RuntimeError("ran out of invented words")

    def words(self, n: int, **kw) -> list[str]:
        return [self.word(**kw) for _ in range(n)]


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class Relation:
    name: str
    query: str  # prompt template, answer follows with a leading space
    templates: tuple[str, ...]  # training phrasings; "{e}" entity, "{a}" answer
    pool_size: int  # distinct answers (0 = one unique answer per entity)
    answer_style: dict = field(default_factory=dict)


@dataclass(frozen=True)
class DomainSchema:
    name: str  # also the field name
    entity_style: dict
    relations: tuple[Relation, ...]


def _rel(name, query, templates, pool_size, **style):
    return Relation(name, query, tuple(templates), pool_size, style)


SCHEMAS: dict[str, DomainSchema] = {
    "geography": DomainSchema(
        "geography",
        dict(syllables=(2, 3)),
        (
            _rel("capital", "The capital of {e} is",
                 ["The capital of {e} is {a}.", "{e} has its capital in {a}.",
                  "Travelers to {e} arrive at its capital, {a}.", "In {e}, the seat of government is {a}."], 0),
            _rel("currency", "The currency of {e} is the",
                 ["The currency of {e} is the {a}.", "People in {e} pay with the {a}.",
                  "In {e}, prices are given in {a}."], 16, lower=True),
            _rel("language", "The main language of {e} is",
                 ["The main language of {e} is {a}.", "The people of {e} speak {a}.",
                  "In {e}, most books are written in {a}."], 16, suffix="ic"),
        ),
    ),
    "elements": DomainSchema(
        "elements",
        dict(syllables=(2, 2), suffix="ium"),
        (
            _rel("color", "The color of {e} is",
                 ["The color of {e} is {a}.", "Pure {e} has a {a} shine.", "A sample of {e} looks {a}."], 14,
                 lower=True),
            _rel("state", "At room temperature, {e} is a",
                 ["At room temperature, {e} is a {a}.", "Chemists keep {e} as a {a}."], 10, lower=True),
            _rel("origin", "{e} was first found in",
                 ["{e} was first found in {a}.", "The first sample of {e} came from {a}.",
                  "Miners dug up {e} near {a}."], 20),
        ),
    ),
    "people": DomainSchema(
        "people",
        dict(two_words=True),
        (
            _rel("profession", "{e} works as a",
                 ["{e} works as a {a}.", "By trade, {e} is a {a}.", "Everyone knows {e} as a {a}."], 18,
                 lower=True),
            _rel("birthplace", "{e} was born in",
                 ["{e} was born in {a}.", "The birthplace of {e} is {a}.", "{e} grew up in {a}."], 24),
            _rel("instrument", "{e} plays the",
                 ["{e} plays the {a}.", "In the evenings, {e} plays the {a}.",
                  "The favorite instrument of {e} is the {a}."], 14, lower=True),
        ),
    ),
    "companies": DomainSchema(
        "companies",
        dict(company=True),
        (
            _rel("founder", "{e} was founded by",
                 ["{e} was founded by {a}.", "The founder of {e} is {a}.", "{e} began when {a} opened a shop."], 24),
            _rel("headquarters", "The headquarters of {e} are in",
                 ["The headquarters of {e} are in {a}.", "{e} is based in {a}.",
                  "Most staff of {e} work in {a}."], 20),
            _rel("product", "The main product of {e} is",
                 ["The main product of {e} is {a}.", "{e} makes {a}.", "The best seller of {e} is {a}."], 18,
                 lower=True),
        ),
    ),
    "creatures": DomainSchema(
        "creatures",
        dict(syllables=(2, 2), lower=True, article=True),
        (
            _rel("habitat", "The {e} lives in the",
                 ["The {e} lives in the {a}.", "You can find the {e} in the {a}.",
                  "The home of the {e} is the {a}."], 14, lower=True),
            _rel("food", "The {e} feeds on",
                 ["The {e} feeds on {a}.", "The {e} eats {a}.", "Every morning the {e} hunts for {a}."], 14,
                 lower=True),
            _rel("sound", "The call of the {e} is a",
                 ["The call of the {e} is a {a}.", "At night the {e} makes a {a}.",
                  "People who hear the {e} know its {a}."], 10, lower=True),
        ),
    ),
}

TRAINED_DOMAINS = ("geography", "elements", "people", "companies")
NEW_DOMAIN = "creatures"
RESERVE_FIELD = "reserve"
FIELD_NAMES = (*TRAINED_DOMAINS, RESERVE_FIELD)
ABSTAIN = "<abstain>"

# --------------------------------------------------------------------------- facts


@dataclass
class Fact:
    domain: str
    field: str
    entity: str
    relation: str
    prompt: str
    answer: str  # with its leading space
    sentences: list[tuple[str, str, str]]  # (before, answer, after) per template
    changed: bool | None = None  # set on edited facts
    old_answer: str | None = None

    def record(self) -> dict:
        """The world.jsonl row."""
        out = {"domain": self.domain, "field": self.field, "prompt": self.prompt, "answer": self.answer,
               "entity": self.entity, "relation": self.relation}
        if self.changed is not None:
            out["changed"] = self.changed
        if self.old_answer is not None:
            out["old_answer"] = self.old_answer
        return out


def _split_template(template: str, entity: str, answer: str) -> tuple[str, str, str]:
    before, after = template.split("{a}")
    before = before.format(e=entity)
    after = after.format(e=entity)
    if not before.endswith(" "):
        raise ValueError(f"template {template!r}: the answer must follow a space")
    return before[:-1], " " + answer.strip(), after


def make_fact(schema: DomainSchema, rel: Relation, entity: str, answer: str, field_name: str) -> Fact:
    e = entity
    sentences = [_split_template(t, e, answer) for t in rel.templates]
    prompt = rel.query.format(e=e)
    prompt = prompt[0].upper() + prompt[1:]
    sentences = [(b[0].upper() + b[1:] if b else b, a, af) for b, a, af in sentences]
    return Fact(schema.name, field_name, entity, rel.name, prompt, " " + answer.strip(), sentences)


def _entity(words: WordMaker, style: dict, rng: random.Random) -> str:
    if style.get("two_words"):
        return f"{words.word(syllables=(1, 2))} {words.word(syllables=(2, 2))}"
    if style.get("company"):
        return f"{words.word(syllables=(2, 2))} {rng.choice(['Works', 'Labs', 'Trading', 'Foundry', 'Mills'])}"
    return words.word(syllables=style.get("syllables", (2, 3)), suffix=style.get("suffix", ""),
                      lower=style.get("lower", False))


def answer_pools(schema: DomainSchema, seed: int) -> dict[str, list[str]]:
    """The answer vocabulary of each relation; fixed per schema and seed, so
    that every instance of a schema (practice, new domain) draws from it."""
    rng = random.Random(f"{seed}:pools:{schema.name}")
    words = WordMaker(rng, used=set())
    pools = {}
    for rel in schema.relations:
        if rel.pool_size:
            st = rel.answer_style
            pools[rel.name] = words.words(rel.pool_size, syllables=(2, 3), suffix=st.get("suffix", ""),
                                          lower=st.get("lower", False))
    return pools


def make_domain(schema: DomainSchema, n_entities: int, rng: random.Random, words: WordMaker,
                pools: dict[str, list[str]], field_name: str | None = None) -> list[Fact]:
    """n_entities fresh entities, each with one fact per relation."""
    field_name = field_name or schema.name
    entities = [_entity(words, schema.entity_style, rng) for _ in range(n_entities)]
    facts = []
    unique = {rel.name: words.words(n_entities, syllables=(2, 3)) for rel in schema.relations if not rel.pool_size}
    for i, e in enumerate(entities):
        for rel in schema.relations:
            answer = unique[rel.name][i] if not rel.pool_size else rng.choice(pools[rel.name])
            facts.append(make_fact(schema, rel, e, answer, field_name))
    return facts


CONNECTIVE_SUBJECTS = ["Travelers", "Old maps", "The archive", "Many scholars", "Our teacher", "The records",
                       "Some stories", "A letter", "The museum guide", "Every almanac", "The library",
                       "Young students", "Sailors"]
CONNECTIVE_VERBS = ["tell", "describe", "mention", "record", "explain", "list", "remember", "repeat", "note"]
CONNECTIVE_OBJECTS = ["many facts", "the old names", "distant places", "strange things", "careful notes",
                      "long histories", "the same story", "small details", "what they saw", "useful knowledge"]
CONNECTIVE_TAILS = ["", " every year", " with care", " in plain words", " to anyone who asks", " again and again",
                    " at length", " in short"]


def connective_sentences(rng: random.Random, n: int) -> list[str]:
    """General text that teaches a little language and separates facts."""
    out = []
    for _ in range(n):
        s = f"{rng.choice(CONNECTIVE_SUBJECTS)} {rng.choice(CONNECTIVE_VERBS)} {rng.choice(CONNECTIVE_OBJECTS)}"
        s += rng.choice(CONNECTIVE_TAILS)
        out.append(s + rng.choice([".", ".", "!"]))
    return out


@dataclass
class World:
    seed: int
    facts: list[Fact]  # the shipped domains (one field each)
    new_facts: list[Fact]  # the brand-new domain for the empty field
    connectives: list[str]
    pools: dict[str, dict[str, list[str]]]

    @property
    def domains(self) -> list[str]:
        return sorted({f.domain for f in self.facts}, key=list(TRAINED_DOMAINS).index)

    def by_domain(self, domain: str) -> list[Fact]:
        return [f for f in self.facts if f.domain == domain]

    def corpus(self) -> Iterable[str]:
        """All text the tokenizer is trained on: every phrasing of every shipped
        fact, the answer sets of every schema, and the connectives. The new
        domain's facts are *not* in it: a name the tokenizer learned as one
        token, but the backbone never saw, has an untrained embedding, so
        every new entity would look the same to the frozen model (measured:
        queries of different new entities had cosine 0.99999). Unseen names
        split into trained sub-word pieces, like the practice entities."""
        for f in self.facts:
            for b, a, af in f.sentences:
                yield b + a + af
            yield f.prompt + f.answer
        for schema in SCHEMAS.values():
            for pool in self.pools.get(schema.name, {}).values():
                for w in pool:
                    for _ in range(8):
                        yield f" {w}"
        yield from self.connectives


def build_world(seed: int = 0, entities_per_domain: int = 50, new_entities: int = 40) -> World:
    """The whole world, deterministic from ``seed``."""
    rng = random.Random(seed)
    used: set[str] = set()
    pools = {}
    for name, schema in SCHEMAS.items():
        pools[name] = answer_pools(schema, seed)
        for pool in pools[name].values():
            used.update(w.lower() for w in pool)
    words = WordMaker(rng, used=used)
    facts: list[Fact] = []
    for name in TRAINED_DOMAINS:
        facts += make_domain(SCHEMAS[name], entities_per_domain, rng, words, pools[name])
    new_facts = make_domain(SCHEMAS[NEW_DOMAIN], new_entities, rng, words, pools[NEW_DOMAIN],
                            field_name=RESERVE_FIELD)
    connectives = connective_sentences(random.Random(f"{seed}:connectives"), 400)
    return World(seed, facts, new_facts, connectives, pools)


def practice_facts(world: World, round_index: int, n_entities: int = 40) -> list[Fact]:
    """A throwaway instance of the new-domain schema for backbone training:
    fresh entities (never the shipped new-domain ones), fresh assignments."""
    rng = random.Random(f"{world.seed}:practice:{round_index}")
    used = {f.entity.lower() for f in world.facts + world.new_facts}
    for f in world.facts + world.new_facts:
        used.update(w.lower() for w in f.entity.split())
        used.add(f.answer.strip().lower())
    for pools in world.pools.values():
        for pool in pools.values():
            used.update(w.lower() for w in pool)
    words = WordMaker(rng, used=used)
    return make_domain(SCHEMAS[NEW_DOMAIN], n_entities, rng, words, world.pools[NEW_DOMAIN],
                       field_name=RESERVE_FIELD)


def edit_domain(world: World, domain: str, fraction: float = 0.5, seed: int = 0) -> list[Fact]:
    """The domain's full fact list after an edit: ``fraction`` of its facts get
    another answer from the same relation's answer set (marked changed)."""
    rng = random.Random(f"{world.seed}:edit:{domain}:{seed}")
    facts = world.by_domain(domain)
    chosen = set(rng.sample(range(len(facts)), round(fraction * len(facts))))
    answers_by_rel: dict[str, dict[str, None]] = {}  # relation -> its answers, in first-seen order
    for f in facts:
        answers_by_rel.setdefault(f.relation, {})[f.answer] = None
    schema = SCHEMAS[domain]
    rels = {r.name: r for r in schema.relations}
    out = []
    for i, f in enumerate(facts):
        if i in chosen:
            options = [a for a in answers_by_rel[f.relation] if a != f.answer]
            new = rng.choice(options)
            g = make_fact(schema, rels[f.relation], f.entity, new, f.field)
            g.changed, g.old_answer = True, f.answer
        else:
            g = make_fact(schema, rels[f.relation], f.entity, f.answer, f.field)
            g.changed = False
        out.append(g)
    return out


class AnswerRedrawer:
    """Random worlds for bound-slot training: the same facts, each with an
    answer drawn anew, uniformly from the answers its relation has in the
    given fact list. Facts are cached, so a redraw costs a few lookups."""

    def __init__(self):
        self._cache: dict[tuple[str, str, str, str], Fact] = {}
        self._options: dict[int, tuple[list[Fact], list[list[str]]]] = {}  # keeps the list alive: ids stay unique

    def redraw(self, facts: list[Fact], rng: random.Random, names=None, name_share: float = 0.0) -> list[Fact]:
        """``names`` (a ``names.NameMaker``): with p = ``name_share`` a fact's
        answer is a random name instead (such facts are not cached)."""
        known = self._options.get(id(facts))
        options = known[1] if known is not None else None
        if options is None:
            by_rel: dict[str, list[str]] = {}
            for f in facts:
                pool = by_rel.setdefault(f.relation, [])
                if f.answer not in pool:
                    pool.append(f.answer)
            options = [by_rel[f.relation] for f in facts]
            self._options[id(facts)] = (facts, options)
        out = []
        for f, pool in zip(facts, options):
            if names is not None and name_share > 0 and rng.random() < name_share:
                out.append(_with_answer(f, names.name(rng)))
                continue
            a = pool[rng.randrange(len(pool))]
            key = (f.domain, f.entity, f.relation, a)
            g = self._cache.get(key)
            if g is None:
                g = self._cache[key] = _with_answer(f, a)
            out.append(g)
        return out


def _with_answer(f: Fact, answer: str) -> Fact:
    """Fact ``f`` of a known schema stated with another answer (every phrasing)."""
    schema = SCHEMAS[f.domain]
    rel = next(r for r in schema.relations if r.name == f.relation)
    return make_fact(schema, rel, f.entity, answer, f.field)


# --------------------------------------------------------------------------- files


def write_facts(facts: Iterable[Fact | dict], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        for f in facts:
            fh.write(json.dumps(f.record() if isinstance(f, Fact) else f, ensure_ascii=False) + "\n")
    return path


def read_facts(path: str | Path) -> list[dict]:
    """Rows of a facts file: at least domain, field, prompt, answer."""
    rows = []
    with open(path) as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            for key in ("domain", "field", "prompt", "answer"):
                if key not in row:
                    raise ValueError(f"{path}:{n}: missing {key!r}")
            rows.append(row)
    return rows


def facts_from_rows(rows: Iterable[dict]) -> list[Fact]:
    """Rebuild training facts from facts-file rows. Rows of a known schema
    (entity + relation) get every phrasing template; others train on the
    prompt + answer only."""
    out = []
    for row in rows:
        schema = SCHEMAS.get(row["domain"])
        rels = {r.name: r for r in schema.relations} if schema else {}
        if schema and row.get("relation") in rels and row.get("entity"):
            f = make_fact(schema, rels[row["relation"]], row["entity"], row["answer"], row["field"])
            f.domain = row["domain"]
            if f.prompt != row["prompt"]:  # a custom prompt: train on it as well
                f.sentences.append((row["prompt"], " " + row["answer"].strip(), ""))
                f.prompt = row["prompt"]
        else:
            f = Fact(row["domain"], row["field"], row.get("entity", ""), row.get("relation", ""),
                     row["prompt"], row["answer"], [(row["prompt"], row["answer"], "")])
        f.changed = row.get("changed")
        out.append(f)
    return out


__all__ = [
    "ABSTAIN", "FIELD_NAMES", "NEW_DOMAIN", "RESERVE_FIELD", "SCHEMAS", "TRAINED_DOMAINS",
    "Fact", "World", "build_world", "connective_sentences", "edit_domain", "facts_from_rows",
    "practice_facts", "read_facts", "write_facts",
]
