"""``POST /memory/fields/{id}/facts`` end to end on a real ``lokiserve serve``
of the shipped demo: bad bodies get the documented 4xx and change nothing, a
good edit is written, verified and swapped in (the completions say the new
answers, the field shows its report), a failing one is refused with 422 and
its numbers, and streaming clients see no failure while edits land."""

from __future__ import annotations

import json
import random
import threading
import time

import httpx
import pytest

from tests.admin_utils import TOKEN, checksums, serving
from tests.engine_utils import DEMO, demo_available

pytestmark = pytest.mark.skipif(not demo_available(), reason="needs the shipped demo model")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from serving(DEMO, tmp_path_factory)


@pytest.fixture
def admin(server):
    with server.http() as client:
        yield client


def world(relation: str) -> list[dict]:
    rows = [json.loads(line) for line in (DEMO / "world.jsonl").read_text().splitlines() if line.strip()]
    return [r for r in rows if r["relation"] == relation]


def complete(server, prompt: str, n: int = 4) -> str:
    r = httpx.post(f"{server.api}/completions", json={"model": server.name, "prompt": prompt, "max_tokens": n,
                                                      "temperature": 0}, timeout=120)
    r.raise_for_status()
    return r.json()["choices"][0]["text"]


def post_facts(admin, field: str, body, **kw) -> httpx.Response:
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return admin.post(f"/memory/fields/{field}/facts", content=content,
                      headers={"Content-Type": "application/json"}, timeout=600, **kw)


def test_bad_bodies_get_documented_errors_and_change_nothing(server, admin):
    before = checksums(admin)
    cases = [
        ("not JSON", b"{this is not json", 400),
        ("not UTF-8", b"\xff\xfe\x00", 400),
        ("missing answer", [{"prompt": "The capital of Zapaedrer is"}], 400),
        ("empty answer", [{"prompt": "The capital of Zapaedrer is", "answer": "  "}], 400),
        ("answer not a string", [{"prompt": "The capital of Zapaedrer is", "answer": 3}], 400),
        ("subject not in prompt", [{"prompt": "The capital of Zapaedrer is", "answer": "X", "subject": "Mars"}], 400),
        ("no facts", [], 400),
        ("NaN constant", b'[{"prompt": "a b", "answer": NaN}]', 400),
        ("10 MB body", b"[" + b" " * (10 << 20) + b"]", 413),
    ]
    for label, body, status in cases:
        r = post_facts(admin, "geography", body)
        assert r.status_code == status, (label, r.status_code, r.text[:300])
        assert "error" in r.json(), label
    r = post_facts(admin, "no-such-field", [{"prompt": "a b", "answer": "c"}])
    assert r.status_code == 404
    r = httpx.post(f"{server.admin}/memory/fields/geography/facts", json=[{"prompt": "a b", "answer": "c"}])
    assert r.status_code == 401  # no token
    assert checksums(admin) == before


def test_live_edit_is_written_verified_and_served(server, admin):
    capitals = world("capital")
    currencies = sorted({r["answer"] for r in world("currency")})
    rng = random.Random(7)
    picked = rng.sample(capitals, 3)
    facts = [{"prompt": r["prompt"], "subject": r["entity"], "answer": rng.choice(currencies)} for r in picked]
    others = [r for r in capitals if r not in picked][:5]
    before_others = [complete(server, r["prompt"]) for r in others]
    t0 = time.time()
    r = post_facts(admin, "geography", {"facts": facts})
    assert r.status_code == 200, r.text[:1000]
    info = r.json()
    assert info["report"]["passed"] and info["report"]["efficacy"] == 1.0, info["report"]
    assert info["seconds"] <= time.time() - t0 + 1
    for fact in facts:
        assert complete(server, fact["prompt"]).startswith(fact["answer"]), fact
    assert [complete(server, r["prompt"]) for r in others] == before_others  # other countries unchanged
    shown = admin.get("/memory/fields/geography").json()
    assert shown["report"]["facts"] == 3 and shown["sha256"] == info["sha256"]


def test_an_edit_that_fails_verification_is_refused_with_its_numbers(server, admin):
    before = checksums(admin)
    # Names of several words for demo capitals: longer than the four tokens a demo slot lists (README, Writing
    # facts), so the write cannot reach them and verification refuses it.
    facts = [{"prompt": r["prompt"], "subject": r["entity"], "answer": name}
             for r, name in zip(world("capital")[10:16], ["Old Harbor Town", "Mount Kelvin City", "New Ardent Bay",
                                                         "Port Quillon Heights", "Upper Silvermoor", "East Brightwater"])]
    r = post_facts(admin, "geography", facts)
    assert r.status_code == 422, r.text[:500]
    body = r.json()
    assert body["error"]["code"] == "verification_failed"
    assert body["report"]["passed"] is False and body["report"]["efficacy"] < 0.9
    assert checksums(admin) == before


def test_a_second_edit_while_one_runs_gets_409(server, admin):
    facts = [{"prompt": r["prompt"], "subject": r["entity"], "answer": r2["answer"].strip()}
             for r, r2 in zip(world("capital")[20:40], world("language")[:20])]
    before = checksums(admin)
    responses = {}
    go = threading.Barrier(2)

    def send(key: str):
        with server.http() as c:
            go.wait()
            responses[key] = post_facts(c, "geography", facts)

    threads = [threading.Thread(target=send, args=(k,)) for k in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status_code for r in responses.values())
    assert statuses.count(409) == 1 and {200, 422} & set(statuses), statuses
    busy = next(r for r in responses.values() if r.status_code == 409)
    assert busy.json()["error"]["code"] == "edit_in_progress"
    if 422 in statuses:
        assert checksums(admin) == before


def test_streaming_clients_survive_ten_live_edits(server, admin):
    from openai import OpenAI

    client = OpenAI(base_url=server.api, api_key="unused", max_retries=0)
    failures, done = [], threading.Event()
    counts = [0] * 8

    def stream(i: int):
        while not done.is_set():
            try:
                text = "".join(c.choices[0].text for c in client.completions.create(
                    model=server.name, prompt="The capital of Zapaedrer is", max_tokens=8, temperature=0, stream=True))
                assert isinstance(text, str)
                counts[i] += 1
            except Exception as exc:  # any failed request fails the test
                failures.append(repr(exc))

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    capitals, states = world("capital"), world("language")
    try:
        statuses = []
        for k in range(10):
            r = capitals[50 - 1 - k]
            fact = {"prompt": r["prompt"], "subject": r["entity"], "answer": states[k]["answer"].strip()}
            statuses.append(post_facts(admin, "geography", [fact]).status_code)
    finally:
        done.set()
        for t in threads:
            t.join()
    assert failures == []
    assert all(c > 0 for c in counts)
    assert statuses.count(200) >= 8, statuses
