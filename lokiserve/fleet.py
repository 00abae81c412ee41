"""``lokiserve fleet apply``: change fields on every server of a fleet, all or none.

Each ``lokiserve serve`` of the fleet is independent; this coordinator drives
their two-phase admin API (``/memory/transactions``):

1. *stage* the changes on every server (each checks the files as a PUT would,
   keeps them, changes nothing live); if any server refuses or cannot be
   reached, *abort* everywhere: nothing changed anywhere;
2. check that every server still holds the staged transaction, then *commit*
   on each in turn; a server that cannot be reached is retried with backoff
   for ``--retry-seconds``;
3. print what each server now serves (memory version, each changed field's
   checksum); exit 0 only if all converged.

The transaction id is printed first. Rerunning with ``--id`` finishes a run
that died: the coordinator asks every server for the transaction's state; if
any committed it commits the rest (staging again where it expired, so pass the
same ``--field`` flags), else it commits all (or aborts all with ``--abort``).

This module is the protocol (``Fleet``, ``apply``); its command line (flags,
the table it prints, exit status) is ``lokiserve.fleet_cli``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx

from lokiserve.admin_cli import describe_transport_error

PROG = "lokiserve fleet"
STOPPED = 3  # exit status of --stop-after-commits (a coordinator "crash" for tests)


class UsageError(Exception):
    pass


class Unreachable(Exception):
    """No answer from a server; ``delivered`` False when the request surely never reached it."""

    def __init__(self, message: str, delivered: bool):
        super().__init__(message)
        self.delivered = delivered


@dataclass
class Answer:
    status: int
    body: dict

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def code(self) -> str:
        return (self.body.get("error") or {}).get("code", "") if not self.ok else ""

    @property
    def message(self) -> str:
        error = self.body.get("error") or {}
        return f"{self.status} {error.get('code', '')}: {error.get('message', '')}" if not self.ok else ""


@dataclass
class Member:
    """One server of the fleet and what the coordinator knows of it."""

    url: str
    token: str
    state: str = "unknown"  # the transaction's state there: unknown, staged, committed, aborted, expired, unreachable
    error: str = ""
    version: int | None = None  # memory version it serves
    fields: dict[str, dict | None] = field(default_factory=dict)  # changed field id -> its FieldInfo there
    staged: list[dict] = field(default_factory=list)  # the transaction's changes as this server knows them


class Fleet:
    def __init__(self, members: list[Member], tx_id: str, timeout: float, retry_seconds: float):
        self.members, self.tx_id = members, tx_id
        self.timeout, self.retry_seconds = timeout, retry_seconds
        self.path = f"/memory/transactions/{quote(tx_id, safe='')}"

    def call(self, m: Member, method: str, path: str, **kwargs) -> Answer:
        try:
            with httpx.Client(base_url=m.url, timeout=self.timeout,
                              headers={"Authorization": f"Bearer {m.token}"}) as http:
                r = http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            delivered = not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
            raise Unreachable(describe_transport_error(m.url, exc), delivered) from None
        try:
            body = r.json()
        except ValueError:
            body = {"error": {"code": "http_error", "message": r.text[:300]}}
        return Answer(r.status_code, body if isinstance(body, dict) else {})

    def with_retries(self, m: Member, method: str, path: str, **kwargs) -> Answer:
        """One call, retried with backoff while the server cannot be reached (up to ``retry_seconds``)."""
        deadline, delay = time.monotonic() + self.retry_seconds, 0.5
        while True:
            try:
                return self.call(m, method, path, **kwargs)
            except Unreachable:
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def query(self, m: Member, retry: bool = False) -> None:
        """The transaction's state on ``m`` (``unreachable`` if no answer)."""
        try:
            a = (self.with_retries if retry else self.call)(m, "GET", self.path)
        except Unreachable as exc:
            m.state, m.error = "unreachable", str(exc)
            return
        if a.ok:
            m.state, m.error, m.staged = a.body["state"], "", a.body.get("changes", [])
        elif a.code in ("unknown_transaction", "transaction_aborted"):
            m.state, m.error = ("unknown" if a.code == "unknown_transaction" else "aborted"), ""
        else:
            m.state, m.error = "error", a.message

    def stage(self, m: Member, body: dict, retry: bool = False) -> bool:
        try:
            a = (self.with_retries if retry else self.call)(m, "POST", "/memory/transactions", json=body)
        except Unreachable as exc:
            m.state, m.error = "unreachable", str(exc)
            return False
        m.state, m.error = (a.body["state"], "") if a.ok else ("refused", a.message)
        return a.ok

    def commit(self, m: Member) -> str:
        """``committed``, ``refused``, ``undelivered`` (surely not committed) or ``unreachable`` (unknown)."""
        try:
            a = self.with_retries(m, "POST", f"{self.path}/commit")
        except Unreachable as exc:
            m.state, m.error = "unreachable", str(exc)
            return "unreachable" if exc.delivered else "undelivered"
        if a.ok:
            m.state, m.error = a.body["state"], ""
            return "committed"
        m.error = a.message
        return "refused"

    def abort(self, m: Member) -> None:
        """One attempt: a server that cannot be reached lets its staged changes expire."""
        try:
            a = self.call(m, "DELETE", self.path)
        except Unreachable as exc:
            m.error = f"{exc} (its staged changes expire on their own)"
            return
        if a.ok or a.code == "unknown_transaction":
            m.state = "aborted" if a.ok else "unknown"
        else:
            m.error = a.message

    def report(self, m: Member, field_ids: list[str]) -> None:
        """What ``m`` serves now (its memory version, each changed field as the
        server resolves its id), and the transaction's state there."""
        error = m.error
        try:
            listing = self.call(m, "GET", "/memory/fields")
            m.version = listing.body.get("version") if listing.ok else None
            m.fields = {}
            for field_id in field_ids:
                a = self.call(m, "GET", f"/memory/fields/{quote(field_id, safe='')}")
                m.fields[field_id] = a.body if a.ok else None
        except Unreachable as exc:
            m.error = error or str(exc)
            return
        self.query(m)
        m.error = m.error or error


# --------------------------------------------------------------------------- the protocol


def apply(fleet: Fleet, changes: list[dict], ttl: float, want_abort: bool, log, stop_after: int | None) -> str:
    """Drive the fleet to one outcome: ``committed``, ``aborted`` (nothing
    changed anywhere), ``diverged`` (some committed, some not: rerun with the
    id), or ``stopped`` (``stop_after`` commits made)."""
    members = fleet.members
    for m in members:
        fleet.query(m)
    body = {"id": fleet.tx_id, "ttl_seconds": ttl, "changes": changes}
    if any(m.state == "committed" for m in members):
        if want_abort:
            log(f"some server already committed {fleet.tx_id}: rolling forward instead of aborting")
        return roll_forward(fleet, body, log, stop_after)
    if want_abort:
        return abort_all(fleet)
    blocked = [m for m in members if m.state in ("aborted", "unreachable", "error")]
    if blocked:
        for m in blocked:
            log(f"{m.url}: {m.state} {m.error}".rstrip())
        return abort_all(fleet)
    for m in members:  # phase 1: stage everywhere, or abort everywhere
        if m.state != "staged" and not stage_or_explain(fleet, m, body):
            log(f"stage failed on {m.url}: {m.error}")
            return abort_all(fleet)
    for m in members:  # every server must still hold it right before the first commit
        fleet.query(m)
        if m.state != "staged":
            log(f"{m.url} no longer holds the staged transaction ({m.state} {m.error}".rstrip() + ")")
            return abort_all(fleet)
    return commit_all(fleet, log, stop_after)


def stage_or_explain(fleet: Fleet, m: Member, body: dict, retry: bool = False) -> bool:
    if not body["changes"]:
        m.state, m.error = "refused", "the transaction is not staged here: pass the same --field/--zero flags"
        return False
    return fleet.stage(m, body, retry)


def roll_forward(fleet: Fleet, body: dict, log, stop_after: int | None) -> str:
    """Some server committed: commit everywhere else, staging again where the
    transaction expired or never arrived; unreachable servers are retried."""
    for m in fleet.members:
        if m.state == "committed":
            continue
        if m.state == "unreachable":
            fleet.query(m, retry=True)
        log(f"rolling forward: {m.url}: {m.state}")
        if m.state in ("unknown", "expired"):
            stage_or_explain(fleet, m, body, retry=True)
    return commit_all(fleet, log, stop_after)


def commit_all(fleet: Fleet, log, stop_after: int | None) -> str:
    """Commit on every server in turn. A refusal before any server committed
    (or a server that the commit surely never reached) aborts everywhere;
    after one committed, the rest are only reported (rerun to roll forward)."""
    done = sum(m.state == "committed" for m in fleet.members)
    for m in fleet.members:
        if m.state == "committed":
            continue
        if stop_after is not None and done >= stop_after:
            return "stopped"
        result = fleet.commit(m)
        if result == "committed":
            done += 1
        elif done == 0 and result in ("refused", "undelivered"):
            log(f"commit failed on {m.url} before any server committed: {m.error}")
            return abort_all(fleet)
        else:
            log(f"commit on {m.url} did not finish: {m.error}")
    return "committed" if done == len(fleet.members) else "diverged"


def abort_all(fleet: Fleet) -> str:
    for m in fleet.members:
        if m.state != "committed":
            fleet.abort(m)
    return "diverged" if any(m.state == "committed" for m in fleet.members) else "aborted"


__all__ = ["Answer", "Fleet", "Member", "Unreachable", "UsageError", "apply", "PROG", "STOPPED"]
