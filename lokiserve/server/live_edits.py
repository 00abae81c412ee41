"""Live edits: ``POST /memory/fields/{id}/facts`` writes, verifies and swaps.

The admin process keeps its own reference model of the served checkpoint
(loaded on the first edit, never downloaded). Before each edit it takes the
engine's live contents of every field, so the writer measures the model
users are actually talking to; the write and its verification run in a
worker thread, so completions keep flowing; the result goes in through the
same validated, two-phase PUT as any field file, guarded by the field's
checksum at the start of the edit (a change that landed meanwhile wins and
this edit answers 409). One edit at a time; a second answers 409.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

from lokiserve.control import MemoryOpError
from lokiserve.edit.facts import Fact
from lokiserve.memory import field_to_bytes


class EditBusy(MemoryOpError):
    def __init__(self, message: str):
        super().__init__(409, "edit_in_progress", message)


class VerificationFailed(MemoryOpError):
    def __init__(self, report: dict):
        super().__init__(422, "verification_failed", "the written field failed verification: "
                         + "; ".join(report.get("failures", [])))
        self.report = report


class LiveEditor:
    def __init__(self, model_dir: str | Path, threads: int = 1):
        self.model_dir = Path(model_dir)
        self.threads = threads
        self._model = None
        self._busy = threading.Lock()

    def _load(self):
        if self._model is None:
            from lokiserve.train.checkpoint import load_model

            self._model = load_model(self.model_dir)
        return self._model

    def _write(self, live: dict[int, object], index: int, facts: list[Fact]):
        import torch

        from lokiserve.edit.service import write_verified

        torch.set_num_threads(self.threads)
        model = self._load()
        for i, fld in live.items():  # the served contents of every field
            if fld.is_empty():
                model.zero_field(i)
            else:
                model.field_memory.write(i, fld)
        return write_verified(self.model_dir, model, index, facts, closed_form=False, log=lambda m: None)

    async def edit(self, service, index: int, facts: list[Fact]) -> dict:
        if not self._busy.acquire(blocking=False):
            raise EditBusy("another live edit is running; retry when it has finished")
        try:
            started = time.perf_counter()
            if service.lock.locked():
                raise EditBusy("another memory change is being applied; retry")
            start_sha = service.manifest.fields[service.names[index]].sha256
            live = {}
            for i in range(len(service.names)):
                live[i], _ = await service._live_field(i)
            result = await asyncio.to_thread(self._write, live, index, facts)
            if not result.passed:
                raise VerificationFailed(result.report)
            result.field.name = service.manifest.fields[service.names[index]].name
            data = await asyncio.to_thread(field_to_bytes, result.field)
            try:
                info = await service.put(index, data, f"facts ({len(facts)} via POST)", start_sha)
            except MemoryOpError as exc:
                if exc.status == 412:
                    raise EditBusy("the field changed while the edit ran; nothing was applied, retry") from None
                raise
            service.reports[index] = result.report
            info = service.describe(index)
            info["seconds"] = round(time.perf_counter() - started, 2)
            return info
        finally:
            self._busy.release()


def report_of(data_metadata: dict) -> dict | None:
    raw = data_metadata.get("report")
    if not raw:
        return None
    try:
        out = json.loads(raw)
    except ValueError:
        return None
    return out if isinstance(out, dict) else None


__all__ = ["LiveEditor", "EditBusy", "VerificationFailed", "report_of"]
