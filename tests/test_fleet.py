"""``lokiserve fleet apply`` and the transaction API, against three real
``lokiserve serve`` processes (the demo model, a small KV cache):

* the coordinator changes a field on all three (one version each, the same
  checksums), and a commit again answers the same; the transaction API's
  states (expired 410, aborted 404/409, a field changed since staging 409);
* a server unreachable (stopped) before the commit: the rerun aborts on all,
  nothing changes anywhere;
* a server killed after the others committed: on its restart it still holds
  the staged transaction, and the coordinator's rerun (retrying while it
  starts) converges all three.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from lokiserve.testing import REPO, free_port, spawn, start_until_up, stop, wait_http
from tests.admin_utils import TOKEN, checksums
from tests.engine_utils import DEMO, demo_available

pytestmark = [pytest.mark.engine, pytest.mark.skipif(not demo_available(), reason="needs the shipped demo model")]
SMALL = ["--enforce-eager", "--dtype", "float32", "--max-model-len", "256", "--max-num-seqs", "4"]
EDIT = DEMO / "edits" / "geography.safetensors"
ENV = {"LOKISERVE_ADMIN_TOKEN": TOKEN}


class Member:
    """One ``lokiserve serve`` of the fleet; ``start`` again reuses its state dir."""

    def __init__(self, state_dir: Path, log_dir: Path):
        self.state_dir, self.log_dir, self.starts = state_dir, log_dir, 0

    def launch(self) -> tuple[list[str], str]:
        return [sys.executable, "-m", "lokiserve.cli", "serve", str(DEMO), "--port", str(self.port),
                "--admin-port", str(self.admin_port), "--state-dir", str(self.state_dir), *SMALL], \
            f"{self.admin}/healthz"

    def launch_on_new_ports(self) -> tuple[list[str], str]:
        self.port, self.admin_port = free_port(), free_port()
        self.admin = f"http://127.0.0.1:{self.admin_port}"
        return self.launch()

    def first_start(self) -> None:
        """Start and wait; a port taken before the server bound it (a
        ``PortClash``) starts it again on other ports."""
        self.starts, self.log = 1, self.log_dir / f"serve-{self.state_dir.name}-1.log"
        self.proc = start_until_up(self.launch_on_new_ports, self.log, ENV, timeout=600)

    def start(self) -> None:
        """Start again on the same ports: once the fleet is up the coordinator knows its URL."""
        self.starts += 1
        self.log = self.log_dir / f"serve-{self.state_dir.name}-{self.starts}.log"
        self.proc = spawn(self.launch()[0], self.log, ENV)

    def wait(self) -> None:
        wait_http(f"{self.admin}/healthz", self.proc, self.log, timeout=600)

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.admin, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    root = tmp_path_factory.mktemp("fleet")
    members = [Member(root / f"state{i}", root) for i in range(3)]
    try:
        with ThreadPoolExecutor(3) as pool:  # the three start at once
            list(pool.map(Member.first_start, members))
        yield members
    finally:
        for m in members:
            if hasattr(m, "proc"):  # a member whose start failed has already been stopped
                stop(m.proc)


@pytest.fixture(scope="module")
def token_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("token") / "admin-token"
    path.write_text(TOKEN + "\n")
    return path


def coordinator(members, token_file, *flags, timeout=900) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "lokiserve.cli", "fleet", "apply", *[a for m in members for a in ("--server", m.admin)],
           "--token-file", str(token_file), *flags]
    env = {k: v for k, v in os.environ.items() if k != "LOKISERVE_ADMIN_TOKEN"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env)


def served(members) -> list[dict[str, tuple[str, str]]]:
    out = []
    for m in members:
        with m.http() as admin:
            out.append(checksums(admin))
    return out


def version(member) -> int:
    with member.http() as admin:
        return admin.get("/memory/fields").json()["version"]


def tx_state(member, tx_id: str) -> tuple[int, str]:
    """(status, state or error code) of the transaction on ``member``."""
    with member.http() as admin:
        r = admin.get(f"/memory/transactions/{tx_id}")
    return r.status_code, r.json()["state"] if r.status_code == 200 else r.json()["error"]["code"]


def test_apply_changes_every_server_and_the_transaction_states(fleet, token_file, tmp_path):
    before, versions = served(fleet), [version(m) for m in fleet]
    assert before[0] == before[1] == before[2]
    run = coordinator(fleet, token_file, "--field", f"geography={EDIT}", "--zero", "people", "--id", "first")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stderr.startswith("lokiserve fleet: transaction first")
    after = served(fleet)
    assert after[0] == after[1] == after[2] != before[0]
    assert after[0]["people"][0] == "zeroed" and after[0]["geography"] != before[0]["geography"]
    assert {k: v for k, v in after[0].items() if k not in ("geography", "people")} == \
        {k: v for k, v in before[0].items() if k not in ("geography", "people")}
    assert [version(m) for m in fleet] == [v + 1 for v in versions]  # one version for the whole set
    for m in fleet:
        assert m.admin in run.stdout
    assert after[0]["geography"][1][:12] in run.stdout

    a = fleet[0]
    with a.http() as admin:
        first = admin.get("/memory/transactions/first").json()
        assert first["state"] == "committed" and first["version"] == versions[0] + 1
        again = admin.post("/memory/transactions/first/commit")
        assert again.status_code == 200 and again.json() == first  # idempotent
        assert admin.delete("/memory/transactions/first").status_code == 409
        # expiry: a staged transaction not committed in time is 410 and changes nothing
        assert admin.post("/memory/transactions", json={"id": "short", "ttl_seconds": 1,
                                                         "changes": [{"field": "elements", "zero": True}]}).status_code == 200
        time.sleep(1.5)
        assert admin.get("/memory/transactions/short").json()["state"] == "expired"
        r = admin.post("/memory/transactions/short/commit")
        assert r.status_code == 410 and r.json()["error"]["code"] == "transaction_expired"
        # a field changed since staging (here by another transaction): the commit is refused
        staged = admin.post("/memory/transactions", json={"changes": [{"field": "companies", "zero": True},
                                                                       {"field": "elements", "zero": True}]}).json()
        elements = tmp_path / "elements.safetensors"
        elements.write_bytes(admin.get("/memory/fields/elements/file").content)
        assert coordinator(fleet, token_file, "--zero", "elements").returncode == 0
        r = admin.post(f"/memory/transactions/{staged['id']}/commit")
        assert r.status_code == 409 and r.json()["error"]["code"] == "transaction_conflict", r.text
        assert "elements" in r.json()["error"]["message"]
        assert checksums(admin)["companies"] == before[0]["companies"]
        # abort: twice the same answer; then it is gone and cannot commit
        assert admin.delete(f"/memory/transactions/{staged['id']}").json()["state"] == "aborted"
        assert admin.delete(f"/memory/transactions/{staged['id']}").status_code == 200
        assert admin.get(f"/memory/transactions/{staged['id']}").json()["error"]["code"] == "transaction_aborted"
        r = admin.post(f"/memory/transactions/{staged['id']}/commit")
        assert r.status_code == 409 and r.json()["error"]["code"] == "transaction_aborted"
        # bad input is a 4xx, never a 5xx
        for body, status in [({"changes": []}, 400), ({"changes": [{"field": "nope", "zero": True}]}, 404),
                             ({"changes": [{"field": "0", "file_b64": "!!"}]}, 400),
                             ({"changes": [{"field": "0", "path": "../x"}]}, 403),
                             ({"changes": [{"field": "0", "zero": True}, {"field": "geography", "zero": True}]}, 400),
                             ({"id": "../x", "changes": [{"field": "0", "zero": True}]}, 400)]:
            r = admin.post("/memory/transactions", json=body)
            assert r.status_code == status, (body, r.text)
        assert admin.get("/memory/transactions/never").status_code == 404
    assert coordinator(fleet, token_file, "--field", f"elements={elements}").returncode == 0  # back as it was
    assert served(fleet) == [after[0]] * 3
    assert len({version(m) for m in fleet}) == 1


def test_a_server_down_before_the_commit_aborts_everywhere(fleet, token_file):
    before = served(fleet)
    run = coordinator(fleet, token_file, "--zero", "companies", "--id", "down", "--stop-after-commits", "0")
    assert run.returncode == 3, run.stdout + run.stderr  # staged everywhere, stopped before the first commit
    assert [tx_state(m, "down") for m in fleet] == [(200, "staged")] * 3
    os.killpg(fleet[2].proc.pid, signal.SIGSTOP)  # unreachable: accepts connections, never answers
    try:
        run = coordinator(fleet, token_file, "--id", "down", "--timeout", "3")
        assert run.returncode == 1, run.stdout + run.stderr
        assert "aborted" in run.stdout
        assert [tx_state(m, "down")[1] for m in fleet[:2]] == ["transaction_aborted"] * 2
    finally:
        os.killpg(fleet[2].proc.pid, signal.SIGCONT)
    assert served(fleet) == before  # nothing changed anywhere
    # the stopped server may have missed the abort (then its --abort rerun finishes it) or read it late
    assert tx_state(fleet[2], "down")[1] in ("staged", "transaction_aborted")
    run = coordinator(fleet, token_file, "--id", "down", "--abort")
    assert run.returncode == 0, run.stdout + run.stderr
    assert [tx_state(m, "down")[1] for m in fleet] == ["transaction_aborted"] * 3
    assert served(fleet) == before


def test_a_server_killed_after_the_others_committed_converges_on_rerun(fleet, token_file):
    before = served(fleet)
    run = coordinator(fleet, token_file, "--zero", "companies", "--id", "killed", "--stop-after-commits", "2")
    assert run.returncode == 3, run.stdout + run.stderr  # the coordinator "dies" after two commits
    assert [tx_state(m, "killed")[1] for m in fleet] == ["committed", "committed", "staged"]
    os.killpg(fleet[2].proc.pid, signal.SIGKILL)
    fleet[2].proc.wait()
    fleet[2].start()  # the same state dir; the rerun retries until it answers
    run = coordinator(fleet, token_file, "--id", "killed", "--retry-seconds", "600", "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"rolling forward: {fleet[2].admin}: staged" in run.stderr  # the restart kept the staged transaction
    fleet[2].wait()
    after = served(fleet)
    assert after[0] == after[1] == after[2] and after[0]["companies"][0] == "zeroed" != before[0]["companies"][0]
    assert len({version(m) for m in fleet}) == 1
    assert [tx_state(m, "killed")[1] for m in fleet] == ["committed"] * 3
