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

    STAGE = "lokiserve_stage_field"  # (field_id, path, source, max_bytes) -> validate and hold; changes nothing
    STAGE_ZERO = "lokiserve_stage_zero"  # (field_id, source) -> hold "make it empty"; changes nothing
    COMMIT = "lokiserve_commit_staged"  # () -> write what is held, keeping a backup
    ROLLBACK = "lokiserve_rollback_last"  # () -> undo this rank's last commit
    DISCARD = "lokiserve_discard_staged"  # () -> drop what is held
    REPORT = "lokiserve_field_report"  # () -> every field's state and this rank's checksum
    EXPORT = "lokiserve_export_field"  # (field_id) -> this rank's shard of one field

    ALL = (STAGE, STAGE_ZERO, COMMIT, ROLLBACK, DISCARD, REPORT, EXPORT)


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
    """Join rank shards (keys replicated, values split on d_v) into one Field; and its state."""
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


class EngineOps(Protocol):
    """What the driver needs of an engine (``AsyncLLM`` has all four)."""

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


@dataclass
class FieldStatus:
    index: int
    name: str
    state: str
    sha256: str  # of the whole field, as exported
    source: str


class MemoryDriver:
    """The one two-phase path for every memory change (async; see ``MemoryControl``
    for a synchronous front)."""

    def __init__(self, engine: EngineOps):
        self.engine = engine

    async def rpc(self, method: str, *args) -> list[dict]:
        return await self.engine.collective_rpc(method, args=args)

    async def report(self) -> dict:
        """Rank 0's report (backbone, per-field state and shard checksum)."""
        return raise_on_failure(await self.rpc(Rpc.REPORT))[0]

    async def export(self, index: int) -> tuple[Field, str]:
        results = await self.rpc(Rpc.EXPORT, index)
        return await asyncio.to_thread(assemble_field, results)

    async def apply(self, index: int, path: str, source: str, max_bytes: int,
                    on_commit: Callable[[], None] | None = None) -> None:
        """Field ``index`` := the field file at ``path``, on every rank or none.
        ``on_commit`` runs after a successful commit, before generation resumes."""
        await self._stage(Rpc.STAGE, index, str(path), source, max_bytes)
        await self._commit(on_commit)

    async def zero(self, index: int, source: str = "zeroed", on_commit: Callable[[], None] | None = None) -> None:
        """Field ``index`` leaves retrieval, on every rank or none."""
        await self._stage(Rpc.STAGE_ZERO, index, source)
        await self._commit(on_commit)

    async def _stage(self, method: str, *args) -> None:
        staged = await self.rpc(method, *args)
        if first_failure(staged):
            await self.rpc(Rpc.DISCARD)
            raise_on_failure(staged, "stage")

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


__all__ = ["WORKER_EXTENSION", "Rpc", "MemoryOpError", "MemoryDriver", "MemoryControl", "SyncEngine", "EngineOps",
           "FieldStatus", "error_result", "first_failure", "raise_on_failure", "assemble_field"]
