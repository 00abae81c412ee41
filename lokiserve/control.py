"""Memory changes against a running engine: the one two-phase driver.

This module is the contract between the server (and scripts, tests, the
benchmarks) above and the vLLM workers below, and imports no vLLM: the
plugin's worker extension (``lokiserve_vllm.worker``) implements the rank
side of every ``Rpc`` name; everything here runs in the caller.

* ``Rpc``: the worker method names, reached through ``collective_rpc``;
* ``raise_on_failure`` / ``assemble_field``: one answer from per-rank results
  (all succeeded, or which failed and why; a field from its rank shards);
* ``MemoryDriver``: stage -> pause -> commit (or roll back) -> reset -> resume,
  over any engine that provides ``EngineOps`` (``AsyncLLM`` in the server,
  ``SyncEngine`` around vLLM's ``LLM`` in tests and scripts).

A change reaches every rank between two engine steps, or none: every rank
validates and holds the field first (stage); only if all staged is it
committed; a rank whose commit fails restores its backup and the others roll
back. Then the prefix cache is dropped and running requests are preempted,
so no token is computed from KV or conv state made with the old memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import torch

from lokiserve.memory import Field

# The worker extension vLLM mixes into its worker (``--worker-extension-cls``).
WORKER_EXTENSION = "lokiserve_vllm.worker.LoKiFormerWorkerExtension"


class Rpc:
    """Worker method names (``lokiserve_vllm.worker.LoKiFormerWorkerExtension``)."""

    STAGE = "lokiserve_stage"  # ([{field, path | None, source}], max_bytes) -> validate and hold all or none
    COMMIT = "lokiserve_commit_staged"  # () -> write what is held, keeping a backup
    ROLLBACK = "lokiserve_rollback_last"  # () -> undo this rank's last commit
    DISCARD = "lokiserve_discard_staged"  # () -> drop what is held
    REPORT = "lokiserve_field_report"  # () -> every field's state and this rank's checksum
    EXPORT = "lokiserve_export_field"  # (field_id) -> this rank's shard of one field
    ARM_FAULT = "lokiserve_arm_fault"  # (phase) -> this rank's next stage/commit fails (tests)

    ALL = (STAGE, COMMIT, ROLLBACK, DISCARD, REPORT, EXPORT, ARM_FAULT)


class MemoryOpError(RuntimeError):
    """A memory operation refused or failed (on some rank); carries an HTTP
    status and an error code for the admin API."""

    def __init__(self, status: int, code: str, message: str, phase: str = ""):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.phase = phase  # "stage" (refused, nothing changed) or "commit" (failed, rolled back)


def error_result(exc: BaseException) -> dict:
    """A worker's failure as a plain dict (crosses process boundaries unchanged)."""
    status = getattr(exc, "status", 404 if isinstance(exc, KeyError) else 500)
    message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    return {"ok": False, "error": type(exc).__name__, "status": status, "message": message}


def first_failure(results: list[dict]) -> dict | None:
    return next((r for r in results if not r.get("ok")), None)


def raise_on_failure(results: list[dict], phase: str = "") -> list[dict]:
    """The results, if every rank succeeded; else ``MemoryOpError`` of the first failure."""
    bad = first_failure(results)
    if bad is not None:
        raise MemoryOpError(int(bad.get("status", 500)), bad.get("error", "Error"), bad.get("message", ""), phase)
    return results


def assemble_field(results: list[dict], **metadata: str) -> tuple[Field, str]:
    """Join one replica's rank shards (keys replicated, values split on d_v)
    into one Field; and its state."""
    results = sorted(raise_on_failure(results), key=lambda r: r["rank"])

    def tensor(entry) -> torch.Tensor:
        shape, raw = entry
        return torch.frombuffer(bytearray(raw), dtype=torch.float32).reshape(shape)

    first = results[0]
    keys, values = {}, {}
    for name in first["tensors"]:
        layer, kind = int(name.split(".")[1]), name.rsplit(".", 1)[-1]
        if kind == "keys":
            keys[layer] = tensor(first["tensors"][name])
        else:
            values[layer] = torch.cat([tensor(r["tensors"][name]) for r in results], dim=-1)
    field = Field(name=first["name"], keys=keys, values=values, backbone=first["backbone"], metadata=metadata)
    return field, first["state"]


def by_replica(results: list[dict]) -> dict[int, list[dict]]:
    """Results grouped by data-parallel replica (engine); 0 when untagged."""
    out: dict[int, list[dict]] = {}
    for r in results:
        out.setdefault(int(r.get("replica", 0)), []).append(r)
    return dict(sorted(out.items()))


def assemble_replicas(results: list[dict]) -> tuple[Field, str]:
    """One field from every replica's shards; replicas that disagree (contents
    or state) are an error naming them, never silently one of them."""
    fields = {rep: assemble_field(rs) for rep, rs in by_replica(raise_on_failure(results)).items()}
    (first, (field, state)), *rest = fields.items()
    for rep, (other, other_state) in rest:
        if other.sha256() != field.sha256() or other_state != state:
            raise MemoryOpError(500, "replica_mismatch",
                                f"data-parallel replicas disagree on field {field.name!r}: replica {first} has "
                                f"{state} {field.sha256()[:12]}, replica {rep} has {other_state} {other.sha256()[:12]}")
    return field, state


class EngineOps(Protocol):
    """What the driver needs of an engine (``AsyncLLM`` has all four). An
    engine whose ``engine_core`` has ``call_utility_all_async`` (vLLM's
    multi-process clients, data-parallel ones included) is asked through it,
    so every data-parallel engine answers, not only the first."""

    def collective_rpc(self, method: str, args: tuple = ...) -> Awaitable[list]: ...
    def pause_generation(self, *, mode: str, clear_cache: bool) -> Awaitable[None]: ...
    def resume_generation(self) -> Awaitable[None]: ...
    def reset_prefix_cache(self, reset_running_requests: bool = ...) -> Awaitable[bool]: ...


class SyncEngine:
    """``EngineOps`` over vLLM's synchronous ``LLM`` (tests, scripts): it runs
    no steps between calls, so pausing is a no-op."""

    def __init__(self, collective_rpc: Callable[..., list], reset_prefix_cache: Callable[..., object]):
        self._rpc, self._reset = collective_rpc, reset_prefix_cache

    async def collective_rpc(self, method: str, args: tuple = ()) -> list:
        return self._rpc(method, args=args)

    async def pause_generation(self, *, mode: str = "keep", clear_cache: bool = False) -> None:
        return None

    async def resume_generation(self) -> None:
        return None

    async def reset_prefix_cache(self, reset_running_requests: bool = False) -> bool:
        return bool(self._reset())


@dataclass(frozen=True)
class Change:
    """One field's new contents: the field file at ``path``, or empty (``path`` None)."""

    index: int
    path: str | None
    source: str


@dataclass
class FieldStatus:
    index: int
    name: str
    state: str
    sha256: str  # of the whole field, as exported
    source: str


class MemoryDriver:
    """The one two-phase path for every memory change (async; see ``MemoryControl``
    for a synchronous front). Every result of every tensor-parallel rank of
    every data-parallel replica is checked."""

    def __init__(self, engine: EngineOps):
        self.engine = engine
        core = getattr(engine, "engine_core", None)
        self._call_all = getattr(core, "call_utility_all_async", None)

    async def rpc(self, method: str, *args) -> list[dict]:
        """Every rank's result, each tagged with its ``replica`` (engine index)."""
        if self._call_all is None:
            per_replica = [await self.engine.collective_rpc(method, args=args)]
        else:
            per_replica = await self._call_all("collective_rpc", method, None, args, None)
        return [{**r, "replica": rep} for rep, results in enumerate(per_replica) for r in results]

    async def replicas(self) -> int:
        return len(by_replica(await self.rpc(Rpc.REPORT)))

    async def report(self) -> dict:
        """Rank 0's report (backbone, per-field state and shard checksum), after
        checking that every replica's ranks report the same."""
        results = raise_on_failure(await self.rpc(Rpc.REPORT))
        groups = by_replica(results)
        base = {r["rank"]: r for r in groups[min(groups)]}
        for rep, rs in groups.items():
            for r in rs:
                mine = base.get(r["rank"])
                if mine is None or r["backbone"] != mine["backbone"] or \
                        [(f["state"], f["sha256"]) for f in r["fields"]] != \
                        [(f["state"], f["sha256"]) for f in mine["fields"]]:
                    raise MemoryOpError(500, "replica_mismatch",
                                        f"data-parallel replica {rep} (rank {r['rank']}) reports other fields than "
                                        f"replica {min(groups)}")
        return {**base[min(base)], "replicas": len(groups)}

    async def export(self, index: int) -> tuple[Field, str]:
        results = await self.rpc(Rpc.EXPORT, index)
        return await asyncio.to_thread(assemble_replicas, results)

    async def apply(self, index: int, path: str, source: str, max_bytes: int,
                    on_commit: Callable[[], None] | None = None) -> None:
        """Field ``index`` := the field file at ``path``, on every rank or none.
        ``on_commit`` runs after a successful commit, before generation resumes."""
        await self.apply_changes([Change(index, str(path), source)], max_bytes, on_commit)

    async def zero(self, index: int, source: str = "zeroed", on_commit: Callable[[], None] | None = None) -> None:
        """Field ``index`` leaves retrieval, on every rank or none."""
        await self.apply_changes([Change(index, None, source)], 0, on_commit)

    async def apply_changes(self, changes: list[Change], max_bytes: int,
                            on_commit: Callable[[], None] | None = None) -> None:
        """Several fields at once, all on every rank of every replica, or none."""
        payload = [{"field": c.index, "path": c.path, "source": c.source} for c in changes]
        staged = await self.rpc(Rpc.STAGE, payload, max_bytes or (1 << 30))
        if first_failure(staged):
            await self.rpc(Rpc.DISCARD)
            raise_on_failure(staged, "stage")
        await self._commit(on_commit)

    async def _commit(self, on_commit: Callable[[], None] | None = None) -> None:
        """Between two engine steps: commit everywhere, or roll back everywhere."""
        await self.engine.pause_generation(mode="keep", clear_cache=False)
        try:
            committed = await self.rpc(Rpc.COMMIT)
            if first_failure(committed):
                await self.rpc(Rpc.ROLLBACK)
            # Also after a rollback: a rank may have served nothing in between, but the
            # cache must never outlive a change that some rank saw.
            await self.engine.reset_prefix_cache(reset_running_requests=True)
            raise_on_failure(committed, "commit")
            if on_commit is not None:
                on_commit()
        finally:
            await self.engine.resume_generation()


class MemoryControl:
    """Synchronous front of ``MemoryDriver`` over ``LLM.collective_rpc``
    (tests, scripts); each call runs the async driver to completion."""

    def __init__(self, rpc: Callable[..., list], reset_prefix_cache: Callable[..., object],
                 max_bytes: int = 1 << 30):
        self.driver = MemoryDriver(SyncEngine(rpc, reset_prefix_cache))
        self.max_bytes = max_bytes

    def apply_field(self, field_id, path: str, source: str | None = None) -> None:
        asyncio.run(self.driver.apply(field_id, str(path), source or str(path), self.max_bytes))

    def zero_field(self, field_id) -> None:
        asyncio.run(self.driver.zero(field_id))

    def export_field(self, field_id) -> tuple[Field, str]:
        return asyncio.run(self.driver.export(field_id))

    def report(self) -> list[FieldStatus]:
        async def run() -> list[FieldStatus]:
            out = []
            for entry in (await self.driver.report())["fields"]:
                field, state = await self.driver.export(entry["index"])
                out.append(FieldStatus(entry["index"], entry["name"], state, field.sha256(), entry["source"]))
            return out

        return asyncio.run(run())


__all__ = ["WORKER_EXTENSION", "Rpc", "Change", "MemoryOpError", "MemoryDriver", "MemoryControl", "SyncEngine",
           "EngineOps", "FieldStatus", "error_result", "first_failure", "raise_on_failure", "assemble_field",
           "assemble_replicas", "by_replica"]
