"""Hot swaps against the running engine: validated, atomic, serialised, persisted.

Every change follows one path:

1. validate fully in this process (format, tensors, geometry, backbone) —
   a bad file never reaches the engine;
2. keep a copy of the file in the state dir and *stage* it on every rank
   (each rank re-validates and holds it; nothing changes yet);
3. pause scheduling (in-flight requests are kept, not failed), *commit* on
   every rank between two engine steps; if any rank fails, the others roll
   back; then drop the prefix cache and preempt running requests, so no token
   after the change is computed from KV or conv state made with the old
   memory (preempted requests recompute and continue); resume;
4. bump the memory version and write the manifest atomically.

Steps 2-3 are ``lokiserve.control.MemoryDriver``, the same two-phase driver
tests and scripts use; this module adds what only a server has: in-process
validation, the lock, the manifest, metrics and the HTTP-facing errors.
Changes are serialised by one lock; reads never wait for the engine.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from pathlib import Path

from lokiserve.control import MemoryDriver, MemoryOpError
from lokiserve.memory import Field, FieldError, MemoryGeometry, field_to_bytes, read_field, resolve_field_id
from lokiserve.server.manifest import FieldRecord, Manifest, ManifestStore
from lokiserve.server.metrics import MemoryMetrics
from lokiserve.server.version_header import live_version

# An admin-visible failure with its HTTP status and error code: the same error
# the driver raises for a rank's refusal, so it reaches the client unchanged.
AdminError = MemoryOpError


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class MemoryService:
    def __init__(self, engine, names: list[str], geometry: MemoryGeometry, store: ManifestStore, max_bytes: int):
        self.engine = engine
        self.driver = MemoryDriver(engine)
        self.names = names
        self.geometry = geometry
        self.store = store
        self.max_bytes = max_bytes
        self.metrics = MemoryMetrics()
        self.lock = asyncio.Lock()
        self.backbone = ""
        self.manifest: Manifest | None = None

    async def _live_field(self, index: int) -> tuple[Field, str]:
        return await self.driver.export(index)

    # -- start-up ----------------------------------------------------------

    async def start(self) -> None:
        """Read the engine's state, then restore the last committed manifest."""
        report = await self.driver.report()
        self.backbone = report["backbone"]
        saved = self.store.load()
        if saved is not None and saved.backbone != self.backbone:
            raise RuntimeError(
                f"{self.store.path} belongs to another backbone ({saved.backbone[:12]}…, model is "
                f"{self.backbone[:12]}…): point --state-dir elsewhere or remove it"
            )
        self.manifest = Manifest(backbone=self.backbone, version=saved.version if saved else 0)
        for index, name in enumerate(self.names):
            record = saved.fields.get(name) if saved else None
            if record is not None and record.state == "zeroed":
                await self.driver.zero(index, record.source)
            elif record is not None and record.file is not None:
                await self.driver.apply(index, str(self.store.field_path(record)), record.source, self.max_bytes)
            live, state = await self._live_field(index)
            self.manifest.fields[name] = FieldRecord(
                name=name,
                state=state,
                sha256=live.sha256(),
                source=record.source if record else "checkpoint",
                version=record.version if record else 0,
                updated_at=record.updated_at if record else None,
                file=record.file if record else None,
            )
        await self.engine.reset_prefix_cache()
        self.store.save(self.manifest)
        self._publish()

    # -- reads ---------------------------------------------------------------

    def index(self, field_id: str) -> int:
        try:
            return resolve_field_id(self.names, field_id)
        except KeyError as exc:
            raise AdminError(404, "unknown_field", exc.args[0]) from None

    def describe(self, index: int) -> dict:
        record = self.manifest.fields[self.names[index]]
        return {
            "id": index,
            "name": record.name,
            "state": record.state,
            "sha256": record.sha256,
            "version": record.version,
            "source": record.source,
            "updated_at": record.updated_at,
        }

    def listing(self) -> dict:
        return {"version": self.manifest.version, "fields": [self.describe(i) for i in range(len(self.names))]}

    async def export(self, index: int) -> tuple[bytes, str]:
        field, _ = await self._live_field(index)
        field.metadata = {"source": f"export of {self.names[index]} at memory version {self.manifest.version}"}
        data = await asyncio.to_thread(field_to_bytes, field)
        return data, self.manifest.fields[self.names[index]].sha256

    # -- changes -------------------------------------------------------------

    def _validate(self, data: bytes) -> Field:
        field = read_field(data, max_bytes=self.max_bytes)
        field.check_compatible(self.geometry, self.backbone)
        return field

    def resolve_memory_path(self, memory_dir: Path, relative: str) -> Path:
        """A path under the memory folder, or a 403; symlinks cannot escape."""
        if not isinstance(relative, str) or not relative or "\0" in relative:
            raise AdminError(400, "bad_path", "path must be a non-empty string")
        candidate = (memory_dir / relative).resolve()
        if candidate != memory_dir and memory_dir not in candidate.parents:
            raise AdminError(403, "path_outside_memory_dir", f"{relative!r} is outside the memory folder")
        if not candidate.is_file():
            raise AdminError(404, "file_not_found", f"{relative!r} is not a file in the memory folder")
        if candidate.stat().st_size > self.max_bytes:
            raise AdminError(413, "too_large", f"{relative!r} is over the {self.max_bytes}-byte limit")
        return candidate

    async def put(self, index: int, data: bytes, source: str, if_match: str | None) -> dict:
        started = time.perf_counter()
        try:
            field = await asyncio.to_thread(self._validate, data)
        except FieldError as exc:
            self.metrics.swaps.labels("put", "rejected").inc()
            raise AdminError(exc.status, type(exc).__name__, str(exc)) from None
        async with self.lock:
            self._check_if_match(index, if_match)
            record = self.manifest.fields[self.names[index]]
            new_state = "zeroed" if field.is_empty() else "active"
            if field.sha256() == record.sha256 and new_state == record.state:
                self.metrics.swaps.labels("put", "noop").inc()
                return self.describe(index)  # identical contents: nothing to do
            path = await asyncio.to_thread(self.store.store_field_file, field.sha256(), data)
            await self._change(self.driver.apply(index, str(path), source, self.max_bytes, self._next_version), "put")
            file = str(path.relative_to(self.store.state_dir))
            return await self._record(index, source, file, started, "put")

    async def zero(self, index: int, if_match: str | None) -> dict:
        started = time.perf_counter()
        async with self.lock:
            self._check_if_match(index, if_match)
            await self._change(self.driver.zero(index, "zeroed", self._next_version), "zero")
            return await self._record(index, "zeroed", None, started, "zero")

    def _check_if_match(self, index: int, if_match: str | None) -> None:
        if if_match is None:
            return
        current = self.manifest.fields[self.names[index]].sha256
        if if_match.strip().strip('"') != current:
            raise AdminError(412, "precondition_failed", f"If-Match {if_match!r} does not match current sha256 {current}")

    def _next_version(self) -> None:
        """Called between the commit and the resume: responses finishing after
        it carry the new version (``_record`` then bumps the manifest to it)."""
        live_version.value = self.manifest.version + 1

    async def _change(self, change, op: str) -> None:
        """Run one driver change, counting a refusal or a rolled-back failure."""
        try:
            await change
        except MemoryOpError as exc:
            self.metrics.swaps.labels(op, "rejected" if exc.phase == "stage" else "failed").inc()
            raise

    async def _record(self, index: int, source: str, file: str | None, started: float, op: str) -> dict:
        live, state = await self._live_field(index)
        name = self.names[index]
        self.manifest.version += 1
        self.manifest.fields[name] = FieldRecord(
            name=name, state=state, sha256=live.sha256(), source=source,
            version=self.manifest.version, updated_at=_now(), file=file,
        )
        await asyncio.to_thread(self.store.save, self.manifest)
        self.metrics.swaps.labels(op, "ok").inc()
        self.metrics.duration.observe(time.perf_counter() - started)
        self._publish()
        return self.describe(index)

    def _publish(self) -> None:
        live_version.value = self.manifest.version  # stamped on every /v1 response
        self.metrics.version.set(self.manifest.version)
        for name, record in self.manifest.fields.items():
            self.metrics.field_active.labels(name).set(1 if record.state == "active" else 0)
