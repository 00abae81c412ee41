"""`lokiserve serve` + the memory admin API, against the real server process.

Talks HTTP with httpx (admin) and the official openai client (completions).
The reference model is the oracle for what the server must answer after a
change; the demo's world.jsonl gives domain-level checks when it is shipped.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import httpx
import pytest
import torch

from lokiserve.memory import field_to_bytes, read_field
from tests.engine_utils import DEMO, demo_available, reference
from tests.admin_utils import (serving, MAX_FIELD_BYTES, TOKEN, Server, checksums, hostile_requests, listing,  # noqa: F401
                               raw_put_declaring, serve_cmd)
from tests.server_utils import stop
from tests.test_vllm_engine import checkpoint  # noqa: F401

pytestmark = pytest.mark.engine
@pytest.fixture(scope="module")
def state_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("state")


@pytest.fixture(scope="module")
def server(checkpoint, state_dir, tmp_path_factory):
    yield from serving(checkpoint, tmp_path_factory, state_dir=state_dir)


@pytest.fixture
def admin(server):
    with server.http() as client:
        yield client


def ref_greedy(model, prompt_ids, n=6) -> list[int]:
    out = model.generate(torch.tensor([prompt_ids]), max_new_tokens=n, do_sample=False, eos_token_id=None, pad_token_id=0)
    return out[0, len(prompt_ids):].tolist()


def prompt_ids(model, seed: int, length: int = 24) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(2, model.config.vocab_size, (length,), generator=g).tolist()


# --------------------------------------------------------------------------- reads, auth


def test_listing_matches_the_design_schema(admin, checkpoint):
    body = listing(admin)
    ref = reference(checkpoint)
    assert isinstance(body["version"], int)
    assert [f["name"] for f in body["fields"]] == ref.field_names
    for f in body["fields"]:
        assert set(f) == {"id", "name", "state", "sha256", "version", "source", "updated_at", "report"}
        assert f["report"] is None  # only a field file written by lokiserve edit carries one
        assert f["sha256"] == ref.export_field(f["id"]).sha256()
        assert f["state"] == ref.field_state(f["id"])
    one = admin.get(f"/memory/fields/{ref.field_names[0]}").json()
    assert one == admin.get("/memory/fields/0").json() == body["fields"][0]


def test_healthz_needs_no_token_everything_else_does(server):
    with server.http(auth=False) as anon:
        assert anon.get("/healthz").json() == {"status": "ok", "replicas": 1}
        for method, path in [("GET", "/memory/fields"), ("GET", "/memory/fields/0"), ("GET", "/metrics"),
                             ("POST", "/memory/fields/0/zero"), ("GET", "/memory/fields/0/file"),
                             ("PUT", "/memory/fields/0")]:
            r = anon.request(method, path)
            assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", (method, path)
        wrong = anon.get("/memory/fields", headers={"Authorization": "Bearer " + "x" * len(TOKEN)})
        assert wrong.status_code == 401
        basic = anon.get("/memory/fields", headers={"Authorization": f"Basic {TOKEN}"})
        assert basic.status_code == 401


def test_vllm_dev_mode_endpoints_are_off(server):
    for path in ("/collective_rpc", "/pause", "/reset_prefix_cache", "/update_weights"):
        r = httpx.post(f"http://127.0.0.1:{server.port}{path}", json={})
        assert r.status_code in (404, 405), path


def _get_twice_on_one_connection(port: int, path: str, idle_s: float) -> list[int]:
    """Two GETs over one TCP connection, ``idle_s`` apart: their statuses
    (http.client does not reconnect: a closed connection raises)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    statuses, socks = [], []
    try:
        for i in range(2):
            if i:
                time.sleep(idle_s)
            conn.request("GET", path)
            r = conn.getresponse()
            r.read()
            statuses.append(r.status)
            socks.append(conn.sock)
        assert socks[0] is socks[1], "the client opened a second connection"
    finally:
        conn.close()
    return statuses


def test_idle_connections_outlive_uvicorns_five_second_keep_alive(server):
    """A pooled client may reuse a connection after a slow call elsewhere;
    both servers keep it open past uvicorn's default 5 s (the keep-alive race
    behind "Server disconnected without sending a response")."""
    for port, path in ((server.port, "/health"), (server.admin_port, "/healthz")):
        assert _get_twice_on_one_connection(port, path, 6.5) == [200, 200], port


def test_export_round_trip_is_a_noop(admin):
    before = listing(admin)
    data = admin.get("/memory/fields/0/file")
    assert data.status_code == 200 and data.headers["content-type"] == "application/octet-stream"
    field = read_field(data.content)
    assert data.headers["etag"].strip('"') == field.sha256() == before["fields"][0]["sha256"]
    r = admin.put("/memory/fields/0", content=data.content, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200
    assert listing(admin) == before  # same version: nothing changed


# --------------------------------------------------------------------------- swaps change answers


def test_prefix_cached_prompt_reflects_the_new_memory(server, admin, checkpoint):
    """Same prompt before and after a swap, prefix caching on: the answer after
    is the reference model's answer with the change, not a stale cache hit.
    The prompts are the field's own facts where the checkpoint has them (a
    trained field is silent for unrelated text), random tokens otherwise."""
    ref = reference(checkpoint)
    name = ref.field_names[0]
    original = admin.get(f"/memory/fields/{name}/file").content
    prompts = field_prompts(ref, checkpoint, name)
    before = [server.complete_ids(p) for p in prompts]
    try:
        assert before == [server.complete_ids(p) for p in prompts]  # second run hits the prefix cache
        assert before == [ref_greedy(ref, p) for p in prompts]
        r = admin.post(f"/memory/fields/{name}/zero")
        assert r.status_code == 200 and r.json()["state"] == "zeroed"
        ref.zero_field(name)
        after = [server.complete_ids(p) for p in prompts]
        assert after == [ref_greedy(ref, p) for p in prompts]
        assert after != before
    finally:  # later tests start from the shipped state
        r = admin.put(f"/memory/fields/{name}", content=original, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200 and r.json()["state"] == "active"
    assert [server.complete_ids(p) for p in prompts] == before


def field_prompts(ref, checkpoint, field: str, n: int = 3) -> list[list[int]]:
    """Token ids of ``n`` prompts that read ``field``: its facts (with <s>) when
    the checkpoint ships a world.jsonl, else random tokens."""
    world = Path(checkpoint) / "world.jsonl"
    if not world.exists():
        return [prompt_ids(ref, s, 40) for s in range(n)]
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(checkpoint)
    facts = [json.loads(x) for x in world.read_text().splitlines() if x.strip()]
    facts = [f for f in facts if f["field"] == field][:n]
    return [[ref.config.bos_token_id] + tok(f["prompt"], add_special_tokens=False)["input_ids"] for f in facts]


def world_facts() -> list[dict]:
    return [json.loads(line) for line in (DEMO / "world.jsonl").read_text().splitlines() if line.strip()]


def answers(server, facts) -> list[str]:
    from openai import OpenAI

    client = OpenAI(base_url=server.api, api_key="unused")
    out = []
    for fact in facts:
        n = 8
        r = client.completions.create(model=server.name, prompt=fact["prompt"], max_tokens=n, temperature=0)
        out.append(r.choices[0].text)
    return out


def correct(texts, facts) -> list[bool]:
    return [t.startswith(f["answer"]) for t, f in zip(texts, facts)]


@pytest.mark.skipif(not demo_available(), reason="needs the shipped demo model")
def test_zero_restore_and_edit_a_domain_field(server, admin):
    facts = world_facts()
    domains = sorted({f["domain"] for f in facts})
    sample = {d: [f for f in facts if f["domain"] == d][:12] for d in domains}
    field_of = {d: sample[d][0]["field"] for d in domains}
    target = domains[0]
    base = {d: correct(answers(server, sample[d]), sample[d]) for d in domains}
    assert all(sum(v) >= 0.9 * len(v) for v in base.values()), base
    before_sums = checksums(admin)
    original = admin.get(f"/memory/fields/{field_of[target]}/file").content

    assert admin.post(f"/memory/fields/{field_of[target]}/zero").status_code == 200
    zeroed = {d: correct(answers(server, sample[d]), sample[d]) for d in domains}
    assert sum(zeroed[target]) <= 0.2 * len(sample[target]), zeroed[target]
    for d in domains[1:]:
        assert zeroed[d] == base[d], d

    r = admin.put(f"/memory/fields/{field_of[target]}", content=original, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200
    assert checksums(admin) == before_sums
    assert {d: correct(answers(server, sample[d]), sample[d]) for d in domains} == base

    # The shipped edited field: the edited facts answer their new values, what
    # the server answers is exactly what the reference model answers with the
    # same field applied (the oracle), and other domains do not move.
    from transformers import AutoTokenizer

    edits = sorted((DEMO / "edits").glob("*.safetensors"))
    assert edits, "memories/demo/edits has no field file"
    edit_field = read_field(edits[0])
    facts_file = sorted((DEMO / "edits").glob("*.jsonl"))[0]
    changed = [json.loads(x) for x in facts_file.read_text().splitlines() if x.strip()]
    changed = [f for f in changed if f.get("changed", True)][:12]
    edit_original = admin.get(f"/memory/fields/{edit_field.name}/file").content
    r = admin.put(f"/memory/fields/{edit_field.name}", json={"path": str(edits[0].relative_to(DEMO))})
    assert r.status_code == 200, r.text
    assert r.json()["sha256"] == edit_field.sha256() and r.json()["source"] == str(edits[0].relative_to(DEMO))
    tok = AutoTokenizer.from_pretrained(DEMO)
    ref = reference(DEMO)
    ref.apply_field(edit_field.name, edit_field)
    for fact in changed:
        ids = tok(fact["prompt"], add_special_tokens=False)["input_ids"]
        assert server.complete_ids(ids, 4) == ref_greedy(ref, ids, 4), fact["prompt"]
    new_values = correct(answers(server, changed), changed)  # "answer" is the new value, "old_answer" the old
    assert sum(new_values) >= len(changed) - 1, [f["prompt"] for f, ok in zip(changed, new_values) if not ok]
    others = [d for d in domains if field_of[d] != edit_field.name]
    assert {d: correct(answers(server, sample[d]), sample[d]) for d in others} == {d: base[d] for d in others}
    r = admin.put(f"/memory/fields/{edit_field.name}", content=edit_original, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200
    assert checksums(admin) == before_sums


# --------------------------------------------------------------------------- hostile input


def test_hostile_requests_get_documented_errors_and_change_nothing(server, admin, checkpoint, tmp_path):
    before = listing(admin)
    cases = hostile_requests(admin, checkpoint, tmp_path)
    assert len(cases) >= 20
    for label, kwargs, status in cases:
        r = admin.request(**kwargs)
        assert r.status_code == status, (label, r.status_code, r.text[:300])
        body = r.json()
        assert set(body["error"]) == {"code", "message"} and body["error"]["message"], label
    assert raw_put_declaring(server.admin_port, 300 << 20).startswith(b"HTTP/1.1 413")
    assert listing(admin) == before
    assert httpx.get(f"{server.admin}/healthz").status_code == 200
    assert server.proc.poll() is None


def test_if_match_with_current_checksum_applies(admin):
    current = listing(admin)["fields"][2]
    data = admin.get("/memory/fields/2/file").content
    r = admin.post("/memory/fields/2/zero", headers={"If-Match": current["sha256"]})
    assert r.status_code == 200
    r = admin.put("/memory/fields/2", content=data, headers={"Content-Type": "application/octet-stream",
                                                             "If-Match": r.json()["sha256"]})
    assert r.status_code == 200 and r.json()["sha256"] == current["sha256"]


# --------------------------------------------------------------------------- load


def test_concurrent_streams_survive_twenty_swaps(server, admin, checkpoint):
    from openai import OpenAI

    ref = reference(checkpoint)
    field = ref.field_names[0]
    original = admin.get(f"/memory/fields/{field}/file").content
    stop_flag = threading.Event()
    failures: list[str] = []
    completed = [0]

    def client_loop(seed: int):
        client = OpenAI(base_url=server.api, api_key="unused", max_retries=0, timeout=120)
        while not stop_flag.is_set():
            try:
                stream = client.completions.create(model=server.name, prompt=prompt_ids(ref, seed, 12),
                                                   max_tokens=24, temperature=0, stream=True, extra_body={"ignore_eos": True})
                n = sum(1 for chunk in stream if chunk.choices)
                if n == 0:
                    failures.append(f"client {seed}: empty stream")
                completed[0] += 1
            except Exception as exc:  # any failure counts
                failures.append(f"client {seed}: {exc!r}")

    threads = [threading.Thread(target=client_loop, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    versions = []
    try:
        time.sleep(1.0)
        for i in range(20):
            r = admin.post(f"/memory/fields/{field}/zero") if i % 2 == 0 else admin.put(
                f"/memory/fields/{field}", content=original, headers={"Content-Type": "application/octet-stream"})
            assert r.status_code == 200, r.text
            versions.append(r.json()["version"])
            time.sleep(0.1)
    finally:
        stop_flag.set()
        for t in threads:
            t.join(timeout=180)
    assert not failures, failures[:5]
    assert completed[0] >= 8
    assert versions == sorted(versions) and len(set(versions)) == 20
    metrics = admin.get("/metrics").text
    assert "lokiserve_memory_version" in metrics and 'lokiserve_field_active{field="' in metrics
    assert "lokiserve_memory_swap_duration_seconds_count" in metrics


# --------------------------------------------------------------------------- persistence


HEADER = "x-lokiserve-memory-version"


def test_every_completion_carries_the_live_memory_version(server, admin):
    """/v1/completions and /v1/chat/completions (plain and streamed) name the
    memory version that served them; a change bumps it on the next answer."""
    from openai import OpenAI

    client = OpenAI(base_url=server.api, api_key="unused")

    def version_of_completion(**kw) -> str:
        raw = client.completions.with_raw_response.create(model=server.name, prompt="The", max_tokens=2,
                                                          temperature=0, **kw)
        raw.parse()
        return raw.headers[HEADER]

    before = listing(admin)["version"]
    assert version_of_completion() == str(before)
    assert version_of_completion(stream=True) == str(before)
    name = listing(admin)["fields"][0]["name"]
    saved = admin.get(f"/memory/fields/{name}/file")
    assert saved.status_code == 200
    try:
        assert admin.post(f"/memory/fields/{name}/zero").status_code == 200
        assert version_of_completion() == str(before + 1) == str(listing(admin)["version"])
    finally:
        r = admin.put(f"/memory/fields/{name}", content=saved.content,
                      headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 200, r.text
    assert version_of_completion() == str(before + 2)
    if demo_available() and server.model == DEMO:  # the demo ships a chat template
        fact = world_facts()[0]
        chat = client.chat.completions.with_raw_response.create(
            model=server.name, messages=[{"role": "user", "content": fact["prompt"]}], max_tokens=4, temperature=0)
        assert chat.headers[HEADER] == str(before + 2)
        text = chat.parse().choices[0].message.content
        plain = client.completions.create(model=server.name, prompt=fact["prompt"], max_tokens=4, temperature=0)
        assert text == plain.choices[0].text  # the template is the prompt after <s>


def test_restart_restores_the_manifest_even_after_kill_9(server, admin, checkpoint, state_dir, tmp_path):
    """Runs last in this module: it stops the shared server."""
    ref = reference(checkpoint)
    name = ref.field_names[1]
    assert admin.post(f"/memory/fields/{name}/zero").status_code == 200
    moved_field = ref.export_field(0)  # field 0's contents into slot 2, under slot 2's name (no rename)
    moved_field.name = ref.field_names[2]
    moved = field_to_bytes(moved_field)
    r = admin.put(f"/memory/fields/{ref.field_names[2]}", content=moved, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200
    committed = listing(admin)
    assert stop(server.proc) is not None  # graceful SIGTERM

    second = Server(checkpoint, state_dir, tmp_path / "second.log")
    with second.context() as proc:
        with second.http() as client:
            assert listing(client) == committed
            p = prompt_ids(ref, 99, 20)
            ref.zero_field(name)
            ref.apply_field(ref.field_names[2], read_field(moved))
            assert second.complete_ids(p) == ref_greedy(ref, p)
            # kill -9 while a swap is in flight: the next start shows the last
            # committed state, before or after the swap, never a mix.
            restore = field_to_bytes(reference(checkpoint).export_field(1))
            def send_swap():
                try:
                    httpx.put(f"{second.admin}/memory/fields/{name}", content=restore, timeout=30,
                              headers={"Content-Type": "application/octet-stream", "Authorization": f"Bearer {TOKEN}"})
                except httpx.HTTPError:
                    pass  # the server is killed under it: no answer is the expected outcome

            sender = threading.Thread(target=send_swap)
            sender.start()
            time.sleep(0.02)
            os.killpg(proc.pid, 9)
            sender.join()
            proc.wait()

    third = Server(checkpoint, state_dir, tmp_path / "third.log")
    with third.context():
        with third.http() as client:
            after = listing(client)
            manifest = json.loads((state_dir / "manifest.json").read_text())
            assert after["version"] == manifest["version"] in (committed["version"], committed["version"] + 1)
            expected = committed if after["version"] == committed["version"] else None
            if expected is not None:
                assert after == expected
            else:
                entry = next(f for f in after["fields"] if f["name"] == name)
                assert entry["state"] == "active" and entry["sha256"] == read_field(restore).sha256()
            for f in after["fields"]:  # live checksums equal the manifest's
                assert manifest["fields"][f["name"]]["sha256"] == f["sha256"]

