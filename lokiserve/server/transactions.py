"""Fleet transactions: a memory change split in two across independent servers.

``stage`` does what a PUT does before touching the engine (validate, keep a
copy of every file) and records what each field was staged against, without
changing anything live; ``commit`` applies every field of the transaction in
one engine change (``MemoryDriver.apply_changes``), one memory version and one
manifest write (the commit point), and only if none of its fields changed
meanwhile; ``abort`` drops it. Records persist in the state dir, so a restart
keeps staged and committed transactions; staged ones expire after their ttl.

``TransactionsMixin`` is part of ``MemoryService`` (same lock, manifest,
metrics and validation); it lives here so each module keeps one concern.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property

import torch

from lokiserve.control import Change, MemoryOpError
from lokiserve.memory import tensors_sha256
from lokiserve.server.manifest import StagedChange, TransactionRecord

AdminError = MemoryOpError

MAX_STAGED_TRANSACTIONS = 16  # staged at once (each holds copies of its files in the state dir)
KEPT_TRANSACTIONS = 256  # finished ones remembered, newest first (commit and abort stay idempotent for these)


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class ChangeRequest:
    """One field of a transaction to stage: a field file's bytes, or None to zero it."""

    index: int
    data: bytes | None
    source: str
    allow_rename: bool = False


class TransactionsMixin:
    """The transaction half of ``MemoryService`` (which provides the lock,
    ``manifest``, ``names``, ``store``, ``tx_store``, ``transactions``,
    ``driver`` and the validation and recording helpers used below)."""

    def _restore_transactions(self) -> None:
        """Load every transaction record; one the manifest names as committed
        but whose record still says staged (a crash between the two writes) is
        committed: the manifest is the commit point."""
        self.transactions = self.tx_store.load_all()
        for tx in self.transactions.values():
            version = self.manifest.transactions.get(tx.id)
            if version is not None and tx.state != "committed":
                tx.state, tx.version, tx.committed_at = "committed", version, time.time()
                tx.fields = [self.describe(c.field) for c in tx.changes]
                self.tx_store.save(tx)

    def _transaction(self, tx_id: str) -> TransactionRecord:
        tx = self.transactions.get(tx_id)
        if tx is None:
            raise AdminError(404, "unknown_transaction", f"no transaction {tx_id[:100]!r} on this server")
        return tx

    @staticmethod
    def _state(tx: TransactionRecord) -> str:
        return "expired" if tx.state == "staged" and time.time() >= tx.expires_at else tx.state

    def describe_transaction(self, tx: TransactionRecord) -> dict:
        return {
            "id": tx.id, "state": self._state(tx), "created_at": _iso(tx.created_at),
            "expires_at": _iso(tx.expires_at), "committed_at": _iso(tx.committed_at), "version": tx.version,
            "changes": [{"id": c.field, "field": c.base["name"], "name": c.name, "state": c.state,
                         "sha256": c.sha256, "source": c.source} for c in tx.changes],
            "fields": tx.fields,
        }

    def get_transaction(self, tx_id: str) -> dict:
        """A transaction's state; an aborted one is gone (404 ``transaction_aborted``)."""
        tx = self._transaction(tx_id)
        if tx.state == "aborted":
            raise AdminError(404, "transaction_aborted", f"transaction {tx.id!r} was aborted")
        return self.describe_transaction(tx)

    async def stage(self, tx_id: str | None, ttl: float, requests: list[ChangeRequest]) -> dict:
        """Validate every change as a PUT would and keep the files; nothing live
        changes. Staging the same changes again under the same id is a no-op
        (an expired one is staged afresh)."""
        if len({r.index for r in requests}) != len(requests):
            raise AdminError(400, "bad_request", "a transaction changes each field at most once")
        fields = [None if r.data is None else await self._validated(r.data, "stage") for r in requests]
        async with self.lock:
            changes = []
            for r, field in zip(requests, fields):
                current = self.manifest.fields[self.names[r.index]]
                base = {"name": current.name, "state": current.state, "sha256": current.sha256}
                if field is None:
                    changes.append(StagedChange(r.index, current.name, "zeroed", self.zero_sha256, r.source, None, base))
                    continue
                self._check_name(r.index, field.name, r.allow_rename)
                state = "zeroed" if field.is_empty() else "active"
                changes.append(StagedChange(r.index, field.name, state, field.sha256(), r.source, "", base))
            old = self.transactions.get(tx_id) if tx_id else None
            plan = [(c.field, c.name, c.state, c.sha256) for c in changes]
            if old is not None:
                if self._state(old) == "staged" and [(c.field, c.name, c.state, c.sha256) for c in old.changes] == plan:
                    return self.describe_transaction(old)  # a retried stage
                if self._state(old) != "expired":
                    what = "staged with other changes" if self._state(old) == "staged" else self._state(old)
                    raise AdminError(409, "transaction_exists", f"transaction {tx_id!r} is {what}: choose another id")
            live = sum(1 for t in self.transactions.values() if self._state(t) == "staged")
            if live >= MAX_STAGED_TRANSACTIONS:
                raise AdminError(429, "too_many_transactions",
                                 f"{live} transactions are staged: commit or abort one, or wait for them to expire")
            for c, r, field in zip(changes, requests, fields):
                if field is not None:
                    path = await asyncio.to_thread(self.store.store_field_file, c.sha256, r.data)
                    c.file = str(path.relative_to(self.store.state_dir))
            now = time.time()
            tx = TransactionRecord(id=tx_id or f"tx-{secrets.token_hex(8)}", state="staged", created_at=now,
                                   expires_at=now + ttl, changes=changes)
            await asyncio.to_thread(self.tx_store.save, tx)
            self.transactions[tx.id] = tx
            self._forget_old_transactions()
            self.metrics.swaps.labels("stage", "ok").inc()
            return self.describe_transaction(tx)

    @cached_property
    def zero_sha256(self) -> str:
        """The checksum of a zeroed field (all zeros, whichever field)."""
        return tensors_sha256({k: torch.zeros(shape) for k, shape in self.geometry.tensor_shapes().items()})

    async def commit(self, tx_id: str) -> dict:
        """All the transaction's changes in one engine change, one version and
        one manifest write; committing it again answers the same."""
        started = time.perf_counter()
        async with self.lock:
            tx = self._transaction(tx_id)
            state = self._state(tx)
            if state == "committed":
                return self.describe_transaction(tx)
            if state == "aborted":
                raise AdminError(409, "transaction_aborted", f"transaction {tx.id!r} was aborted: nothing to commit")
            if state == "expired":
                raise AdminError(410, "transaction_expired",
                                 f"transaction {tx.id!r} expired at {_iso(tx.expires_at)} uncommitted: stage it again")
            moved = [c for c in tx.changes if self._base(c.field) != c.base]
            if moved:
                raise AdminError(409, "transaction_conflict", "changed since the transaction was staged: " + ", ".join(
                    f"field {c.field} ({c.base['name']}: {c.base['sha256'][:12]} -> "
                    f"{self.manifest.fields[self.names[c.field]].sha256[:12]})" for c in moved))
            changes = [Change(c.field, None if c.file is None else str(self.store.state_dir / c.file), c.source)
                       for c in tx.changes]
            await self._change(self.driver.apply_changes(changes, self.max_bytes, self._next_version), "commit")
            self.manifest.version += 1
            for c in tx.changes:
                await self._record_field(c.field, c.source, c.file, c.name)
            self.manifest.transactions[tx.id] = self.manifest.version
            for old in list(self.manifest.transactions)[:-KEPT_TRANSACTIONS]:
                del self.manifest.transactions[old]
            await asyncio.to_thread(self.store.save, self.manifest)  # the commit point
            tx.state, tx.version, tx.committed_at = "committed", self.manifest.version, time.time()
            tx.fields = [self.describe(c.field) for c in tx.changes]
            await asyncio.to_thread(self.tx_store.save, tx)
            self._done("commit", started)
            return self.describe_transaction(tx)

    def _base(self, index: int) -> dict[str, str]:
        record = self.manifest.fields[self.names[index]]
        return {"name": record.name, "state": record.state, "sha256": record.sha256}

    async def abort(self, tx_id: str) -> dict:
        """Drop a staged (or expired) transaction; aborting it again answers the same."""
        async with self.lock:
            tx = self._transaction(tx_id)
            if tx.state == "committed":
                raise AdminError(409, "transaction_committed", f"transaction {tx.id!r} is committed: it cannot be aborted")
            if tx.state != "aborted":
                tx.state = "aborted"
                await asyncio.to_thread(self.tx_store.save, tx)
                self.metrics.swaps.labels("abort", "ok").inc()
            return self.describe_transaction(tx)

    def _forget_old_transactions(self) -> None:
        """Keep the newest ``KEPT_TRANSACTIONS`` finished records (staged ones stay)."""
        finished = sorted((t for t in self.transactions.values() if self._state(t) != "staged"),
                          key=lambda t: t.created_at, reverse=True)
        for tx in finished[KEPT_TRANSACTIONS:]:
            self.tx_store.delete(tx.id)
            del self.transactions[tx.id]


__all__ = ["ChangeRequest", "TransactionsMixin", "MAX_STAGED_TRANSACTIONS", "KEPT_TRANSACTIONS"]
