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

A *transaction* (``stage`` / ``commit`` / ``abort``) is the same path split
in two for a fleet of servers: ``stage`` does step 1 and keeps the copies,
recording what each field was staged against; ``commit`` does steps 2-4 for
all its fields at once (one engine change, one version, one manifest write),
and only if none of those fields changed meanwhile.

A field file names the field it was made for. Loaded onto a non-empty field
of another name it is refused unless the request allows it
(``allow_rename``); into an empty (zeroed) one it brings its name, which the
field is then shown and found by (the config's name and the index still work).
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from pathlib import Path


from lokiserve.control import MemoryDriver, MemoryOpError, Rpc, by_replica, raise_on_failure
from lokiserve.memory import (Field, FieldError, MemoryGeometry, field_to_bytes, read_field, resolve_field_id)
from lokiserve.server.manifest import (FieldRecord, Manifest, ManifestStore, TransactionRecord,
                                       TransactionStore)
from lokiserve.server.metrics import MemoryMetrics
from lokiserve.server.transactions import ChangeRequest, TransactionsMixin  # noqa: F401  (routes import ChangeRequest here)
from lokiserve.server.version_header import live_version

# An admin-visible failure with its HTTP status and error code: the same error
# the driver raises for a rank's refusal, so it reaches the client unchanged.
AdminError = MemoryOpError


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class MemoryService(TransactionsMixin):
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
        self.reports: dict[int, dict] = {}  # the verification report of each field's file, when it has one
        self.editor = None  # lokiserve.server.live_edits.LiveEditor, set by the launcher
        self.manifest: Manifest | None = None
        self.tx_store = TransactionStore(store.state_dir)
        self.transactions: dict[str, TransactionRecord] = {}

    async def _live_field(self, index: int) -> tuple[Field, str]:
        return await self.driver.export(index)

    # -- start-up ----------------------------------------------------------

    async def start(self) -> None:
        """Read the engine's state, then restore the last committed manifest."""
        report = await self.driver.report()
        self.backbone = report["backbone"]
        self.metrics.replicas.set(report["replicas"])
        saved = self.store.load()
        if saved is not None and saved.backbone != self.backbone:
            raise RuntimeError(
                f"{self.store.path} belongs to another backbone ({saved.backbone[:12]}…, model is "
                f"{self.backbone[:12]}…): point --state-dir elsewhere or remove it"
            )
        self.manifest = Manifest(backbone=self.backbone, version=saved.version if saved else 0,
                                 transactions=saved.transactions if saved else {})
        for index, name in enumerate(self.names):
            record = saved.fields.get(name) if saved else None
            if record is not None and record.state == "zeroed":
                await self.driver.zero(index, record.source)
            elif record is not None and record.file is not None:
                path = self.store.field_path(record)
                await self.driver.apply(index, str(path), record.source, self.max_bytes)
                self._keep_report(index, read_field(path, max_bytes=self.max_bytes).metadata)
            live, state = await self._live_field(index)
            self.manifest.fields[name] = FieldRecord(
                name=record.name if record else name,
                state=state,
                sha256=live.sha256(),
                source=record.source if record else "checkpoint",
                version=record.version if record else 0,
                updated_at=record.updated_at if record else None,
                file=record.file if record else None,
            )
        await self.engine.reset_prefix_cache()
        self.store.save(self.manifest)
        self._restore_transactions()
        self._publish()

    async def health(self) -> dict:
        """``ok`` when every rank of every data-parallel replica reports the same
        fields (state and checksum); replicas that disagree are ``unhealthy``.
        Changes hold the lock, so this never reads a change half-way."""
        async with self.lock:
            try:
                report = await self.driver.report()
            except MemoryOpError as exc:
                self.metrics.replicas_consistent.set(0)
                return {"status": "unhealthy", "message": exc.message}
        self.metrics.replicas.set(report["replicas"])
        self.metrics.replicas_consistent.set(1)
        return {"status": "ok", "replicas": report["replicas"]}

    async def replica_report(self) -> dict:
        """Every data-parallel replica's ranks: each field's state and shard checksum."""
        groups = by_replica(raise_on_failure(await self.driver.rpc(Rpc.REPORT)))
        replicas = [{"replica": rep, "ranks": [{"rank": r["rank"], "fields": [
            {"name": f["name"], "state": f["state"], "sha256": f["sha256"]} for f in r["fields"]]}
            for r in sorted(rs, key=lambda r: r["rank"])]} for rep, rs in groups.items()]
        shapes = [[[(f["state"], f["sha256"]) for f in rank["fields"]] for rank in rep["ranks"]] for rep in replicas]
        return {"consistent": all(s == shapes[0] for s in shapes), "replicas": replicas}

    # -- reads ---------------------------------------------------------------

    def index(self, field_id: str) -> int:
        """A field's index from its index, its config name or its shown name (a
        config name always means its own field)."""
        try:
            return resolve_field_id(self.names, field_id)
        except KeyError as exc:
            shown = [self.manifest.fields[name].name for name in self.names]
            if field_id in shown:
                return shown.index(field_id)
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
            "report": self.reports.get(index) if record.state == "active" else None,
        }

    def listing(self) -> dict:
        return {"version": self.manifest.version, "fields": [self.describe(i) for i in range(len(self.names))]}

    async def export(self, index: int) -> tuple[bytes, str]:
        field, _ = await self._live_field(index)
        field.name = self.manifest.fields[self.names[index]].name  # a PUT of the export is a no-op, also after a rename
        field.metadata = {"source": f"export of {field.name} at memory version {self.manifest.version}"}
        data = await asyncio.to_thread(field_to_bytes, field)
        return data, self.manifest.fields[self.names[index]].sha256

    # -- changes -------------------------------------------------------------

    def _validate(self, data: bytes) -> Field:
        field = read_field(data, max_bytes=self.max_bytes)
        field.check_compatible(self.geometry, self.backbone)
        return field

    async def _validated(self, data: bytes, op: str) -> Field:
        """``_validate`` in a thread; a refusal is counted and becomes an ``AdminError``."""
        try:
            field = await asyncio.to_thread(self._validate, data)
        except FieldError as exc:
            self.metrics.swaps.labels(op, "rejected").inc()
            raise AdminError(exc.status, type(exc).__name__, str(exc)) from None
        if field.name.isascii() and field.name.isdigit():
            self.metrics.swaps.labels(op, "rejected").inc()
            raise AdminError(422, "bad_field_name", f"field name {field.name[:40]!r} is digits: it would read as an index")
        return field

    def _check_name(self, index: int, name: str, allow_rename: bool) -> None:
        """A file made for another field is refused onto a non-empty field,
        unless the request allows it; an empty field takes any name."""
        current = self.manifest.fields[self.names[index]]
        if name != current.name and current.state == "active" and not allow_rename:
            raise AdminError(409, "field_name_mismatch",
                             f"the file is a field for {name[:200]!r}, but field {index} holds {current.name!r}: "
                             f"pass allow_rename=true to load it there anyway (the field is then shown as "
                             f"{name[:200]!r}), or zero the field first")

    def resolve_memory_path(self, memory_dir: Path, relative: str) -> Path:
        """A path under the memory folder, or a 403; symlinks cannot escape."""
        if not isinstance(relative, str) or not relative or "\0" in relative:
            raise AdminError(400, "bad_path", "path must be a non-empty string")
        try:
            candidate = (memory_dir / relative).resolve()
            inside = candidate == memory_dir or memory_dir in candidate.parents
            is_file = inside and candidate.is_file()
        except (OSError, ValueError) as exc:  # a name too long, unencodable, unreadable
            raise AdminError(400, "bad_path", f"cannot resolve {relative[:200]!r}: {exc}"[:500]) from None
        if not inside:
            raise AdminError(403, "path_outside_memory_dir", f"{relative!r} is outside the memory folder")
        if not is_file:
            raise AdminError(404, "file_not_found", f"{relative!r} is not a file in the memory folder")
        if candidate.stat().st_size > self.max_bytes:
            raise AdminError(413, "too_large", f"{relative!r} is over the {self.max_bytes}-byte limit")
        return candidate

    def read_memory_file(self, memory_dir: Path, relative: str) -> tuple[bytes, str]:
        """(bytes, source label) of a field file named by a client under the memory folder."""
        path = self.resolve_memory_path(memory_dir, relative)
        try:
            data = path.read_bytes()
        except (OSError, ValueError) as exc:  # e.g. unreadable, or gone since it was resolved
            raise AdminError(400, "bad_path", f"cannot read {relative[:200]!r}: {exc}"[:500]) from None
        return data, str(path.relative_to(memory_dir))

    async def put(self, index: int, data: bytes, source: str, if_match: str | None, allow_rename: bool = False) -> dict:
        started = time.perf_counter()
        field = await self._validated(data, "put")
        async with self.lock:
            self._check_if_match(index, if_match)
            try:
                self._check_name(index, field.name, allow_rename)
            except AdminError:
                self.metrics.swaps.labels("put", "rejected").inc()
                raise
            record = self.manifest.fields[self.names[index]]
            new_state = "zeroed" if field.is_empty() else "active"
            if field.sha256() == record.sha256 and new_state == record.state and field.name == record.name:
                self.metrics.swaps.labels("put", "noop").inc()
                return self.describe(index)  # identical contents: nothing to do
            path = await asyncio.to_thread(self.store.store_field_file, field.sha256(), data)
            await self._change(self.driver.apply(index, str(path), source, self.max_bytes, self._next_version), "put")
            file = str(path.relative_to(self.store.state_dir))
            self._keep_report(index, field.metadata)
            return await self._record(index, source, file, started, "put", field.name)

    async def zero(self, index: int, if_match: str | None) -> dict:
        started = time.perf_counter()
        async with self.lock:
            self._check_if_match(index, if_match)
            await self._change(self.driver.zero(index, "zeroed", self._next_version), "zero")
            return await self._record(index, "zeroed", None, started, "zero")

    def _keep_report(self, index: int, metadata: dict) -> None:
        from lokiserve.server.live_edits import report_of

        report = report_of(metadata)
        if report is None:
            self.reports.pop(index, None)
        else:
            self.reports[index] = report

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

    async def _record(self, index: int, source: str, file: str | None, started: float, op: str,
                      shown: str | None = None) -> dict:
        self.manifest.version += 1
        await self._record_field(index, source, file, shown)
        await asyncio.to_thread(self.store.save, self.manifest)
        self._done(op, started)
        return self.describe(index)

    async def _record_field(self, index: int, source: str, file: str | None, shown: str | None) -> None:
        """Field ``index`` in the manifest as it is live now, at the manifest's version."""
        live, state = await self._live_field(index)
        key = self.names[index]
        self.manifest.fields[key] = FieldRecord(
            name=shown or self.manifest.fields[key].name, state=state, sha256=live.sha256(), source=source,
            version=self.manifest.version, updated_at=_now(), file=file,
        )

    def _done(self, op: str, started: float) -> None:
        self.metrics.swaps.labels(op, "ok").inc()
        self.metrics.duration.observe(time.perf_counter() - started)
        self._publish()

    def _publish(self) -> None:
        live_version.value = self.manifest.version  # stamped on every /v1 response
        self.metrics.version.set(self.manifest.version)
        for name, record in self.manifest.fields.items():
            self.metrics.field_active.labels(name).set(1 if record.state == "active" else 0)
