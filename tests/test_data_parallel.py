"""Data parallelism: ``lokiserve serve --data-parallel-size 2`` on this 2-core
machine (one core per engine), against the real server.

Every memory operation must reach every rank of both engines with all results
checked (vLLM's DP client returns only the first engine's result for a plain
utility call), a failure on one replica must roll back the other, and every
answer names a memory version that was live while it ran.
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import torch

from tests.admin_utils import serving, listing
from tests.engine_utils import reference
from tests.test_vllm_engine import checkpoint  # noqa: F401

pytestmark = pytest.mark.engine
HEADER = "x-lokiserve-memory-version"


@pytest.fixture(scope="module")
def server(checkpoint, tmp_path_factory):  # noqa: F811
    yield from serving(checkpoint, tmp_path_factory,
                       extra=["--data-parallel-size", "2", "--max-num-seqs", "16", "--max-model-len", "256"],
                       # one core per engine; the first commit on replica 1 fails (the all-or-none test uses it)
                       env={"VLLM_CPU_OMP_THREADS_BIND": "0|1", "LOKISERVE_INJECT_FAULT": "commit@1"}, timeout=600)


@pytest.fixture
def admin(server):
    with server.http() as client:
        yield client


def replicas(admin) -> dict:
    r = admin.get("/memory/replicas")
    assert r.status_code == 200, r.text
    return r.json()


def per_replica(admin, name: str) -> list[tuple[str, tuple[str, ...]]]:
    """(state, shard checksums of every rank) of one field, per replica."""
    out = []
    for rep in replicas(admin)["replicas"]:
        states = {f["state"] for rank in rep["ranks"] for f in rank["fields"] if f["name"] == name}
        assert len(states) == 1
        out.append((states.pop(), tuple(f["sha256"] for rank in rep["ranks"] for f in rank["fields"]
                                        if f["name"] == name)))
    return out


def test_both_replicas_are_checked_and_healthy(server, admin):
    assert httpx.get(f"{server.admin}/healthz").json() == {"status": "ok", "replicas": 2}
    report = replicas(admin)
    assert report["consistent"] and [r["replica"] for r in report["replicas"]] == [0, 1]


def _prompts(model, n: int) -> list[list[int]]:
    g = torch.Generator().manual_seed(7)
    return [torch.randint(3, model.config.vocab_size, (8 + i % 9,), generator=g).tolist() for i in range(n)]


def _greedy(model, prompt: list[int], n: int) -> list[int]:
    out = model.generate(torch.tensor([prompt]), max_new_tokens=n, do_sample=False, eos_token_id=None, pad_token_id=0)
    return out[0, len(prompt):].tolist()


def test_greedy_parity_over_both_replicas(server, checkpoint):  # noqa: F811
    """32 concurrent prompts spread over both engines give the reference's tokens."""
    ref = reference(checkpoint)
    prompts = _prompts(ref, 32)
    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(lambda p: server.complete_ids(p, max_tokens=5), prompts))
    assert got == [_greedy(ref, p, 5) for p in prompts]
    metrics = httpx.get(f"http://127.0.0.1:{server.port}/metrics").text
    per_engine: dict[str, float] = {}  # vLLM counts finished requests per engine
    for m in re.finditer(r'vllm:request_success_total\{([^}]*)\} ([0-9.e+]+)', metrics):
        engine = re.search(r'engine="(\d+)"', m.group(1))
        if engine:
            per_engine[engine.group(1)] = per_engine.get(engine.group(1), 0.0) + float(m.group(2))
    assert len(per_engine) == 2 and all(v > 0 for v in per_engine.values()), per_engine


def test_a_commit_failing_on_replica_1_only_rolls_back_replica_0(server, admin):
    """The first change of this module (the server runs with
    LOKISERVE_INJECT_FAULT=commit@1) fails on replica 1 alone: replica 0,
    which committed, rolls back; nothing changes anywhere, no version is bumped."""
    name = listing(admin)["fields"][1]["name"]
    before_list = listing(admin)
    before = per_replica(admin, name)
    assert before[0] == before[1] and before[0][0] == "active"
    r = admin.post(f"/memory/fields/{name}/zero")
    assert r.status_code == 500 and "injected commit fault" in r.json()["error"]["message"], r.text
    assert per_replica(admin, name) == before
    assert listing(admin) == before_list
    assert 'lokiserve_memory_swaps_total{op="zero",result="failed"} 1.0' in admin.get("/metrics").text
    assert replicas(admin)["consistent"]
    assert httpx.get(f"{server.admin}/healthz").json() == {"status": "ok", "replicas": 2}
    r = admin.post(f"/memory/fields/{name}/zero")  # the fault is spent: the same change now applies everywhere
    assert r.status_code == 200, r.text
    zeroed = per_replica(admin, name)
    assert zeroed[0] == zeroed[1] and zeroed[0][0] == "zeroed"


def test_zero_and_put_reach_both_replicas(server, admin):
    name = listing(admin)["fields"][0]["name"]
    saved = admin.get(f"/memory/fields/{name}/file").content
    before = per_replica(admin, name)
    assert before[0] == before[1] and before[0][0] == "active"
    assert admin.post(f"/memory/fields/{name}/zero").status_code == 200
    zeroed = per_replica(admin, name)
    assert zeroed[0] == zeroed[1] and zeroed[0][0] == "zeroed" and zeroed[0] != before[0]
    r = admin.put(f"/memory/fields/{name}", content=saved, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200, r.text
    assert per_replica(admin, name) == before
    assert replicas(admin)["consistent"]


def test_streams_over_both_replicas_survive_twenty_swaps(server, admin, checkpoint):  # noqa: F811
    """8 streaming clients while a field is zeroed and restored 20 times: no
    request fails, and each answer's memory version was live while it ran."""
    ref = reference(checkpoint)
    name = listing(admin)["fields"][0]["name"]
    saved = admin.get(f"/memory/fields/{name}/file").content
    stop, failures, seen = threading.Event(), [], []

    def client(seed: int):
        with httpx.Client(timeout=120) as http:
            i = 0
            while not stop.is_set():
                lo = listing(admin_client)["version"]
                try:
                    with http.stream("POST", f"{server.api}/completions", json={
                            "model": server.name, "prompt": _prompts(ref, 40)[(seed * 5 + i) % 40], "max_tokens": 8,
                            "temperature": 0, "stream": True, "ignore_eos": True}) as r:
                        r.raise_for_status()
                        body = "".join(r.iter_text())
                        version = int(r.headers[HEADER])
                    hi = listing(admin_client)["version"]
                    assert body.rstrip().endswith("data: [DONE]"), body[-200:]
                    seen.append((lo, version, hi))
                except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
                    failures.append(repr(exc))
                i += 1

    with server.http() as admin_client:
        threads = [threading.Thread(target=client, args=(s,)) for s in range(8)]
        for t in threads:
            t.start()
        try:
            for k in range(20):
                if k % 2 == 0:
                    r = admin.post(f"/memory/fields/{name}/zero")
                else:
                    r = admin.put(f"/memory/fields/{name}", content=saved,
                                  headers={"Content-Type": "application/octet-stream"})
                assert r.status_code == 200, r.text
                time.sleep(0.3)
        finally:
            stop.set()
            for t in threads:
                t.join(120)
    assert not failures, failures[:5]
    assert len(seen) >= 8
    assert all(lo <= v <= hi for lo, v, hi in seen), [s for s in seen if not s[0] <= s[1] <= s[2]][:5]
    assert replicas(admin)["consistent"]
