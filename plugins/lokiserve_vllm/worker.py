"""Worker-side memory operations: the rank side of ``lokiserve.control.Rpc``.

vLLM mixes this class into its worker (``--worker-extension-cls``), so the
engine can call ``collective_rpc(Rpc.STAGE, ...)`` on every rank between two
engine steps; vLLM's unauthenticated dev-mode RPC endpoint is never needed.
Each rank validates and writes its own shard. Results are plain dicts (errors
included) so they cross process boundaries unchanged.

Changes are two-phase (``lokiserve.control.MemoryDriver`` drives them):
``stage`` validates and holds a change (a field file, or "make it empty"),
changing nothing; ``commit`` writes it after taking a backup, and restores the
backup itself if the write fails; ``rollback_last`` undoes this rank's last
commit when another rank's commit failed; ``discard`` drops what is held.
Every memory operation goes through the model's ``FieldMemory``.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass

from lokiserve.control import error_result
from lokiserve.memory import DEFAULT_MAX_FILE_BYTES, Field, FieldError, MemorySnapshot, read_field


@dataclass
class _Staged:
    index: int
    field: Field | None  # None: make the field empty (zero)
    source: str


@dataclass
class _Committed:
    index: int
    backup: MemorySnapshot
    source: str  # the field's source before the commit


class LoKiFormerWorkerExtension:
    """Mixed into vLLM's worker class; ``self`` is the worker."""

    def _lokiserve_model(self):
        model = self.model_runner.get_model()
        if not hasattr(model, "field_memory"):
            raise RuntimeError(f"{type(model).__name__} is not a LoKiFormer model")
        return model

    def _lokiserve_rank(self) -> int:
        from vllm.distributed import get_tensor_model_parallel_rank

        return get_tensor_model_parallel_rank()

    def _lokiserve_ok(self, **extra) -> dict:
        return {"ok": True, "rank": self._lokiserve_rank(), **extra}

    # -- phase 1 ---------------------------------------------------------------

    def lokiserve_stage_field(self, field_id, path: str, source: str | None = None,
                              max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> dict:
        """Read and fully validate a field file; hold it until commit. Changes nothing."""
        self._lokiserve_staged = None
        try:
            model = self._lokiserve_model()
            index = model.field_memory.index(field_id)
            field = read_field(path, max_bytes=max_bytes)
            model.validate_field(field)
        except (FieldError, KeyError, OSError, RuntimeError) as exc:
            return error_result(exc)
        self._lokiserve_staged = _Staged(index, field, source or str(path))
        return self._lokiserve_ok(index=index, sha256=field.sha256())

    def lokiserve_stage_zero(self, field_id, source: str = "zeroed") -> dict:
        """Hold "make field ``field_id`` empty" until commit. Changes nothing."""
        self._lokiserve_staged = None
        try:
            index = self._lokiserve_model().field_memory.index(field_id)
        except (KeyError, RuntimeError) as exc:
            return error_result(exc)
        self._lokiserve_staged = _Staged(index, None, source)
        return self._lokiserve_ok(index=index)

    def lokiserve_discard_staged(self) -> dict:
        self._lokiserve_staged = None
        return self._lokiserve_ok()

    # -- phase 2 ---------------------------------------------------------------

    def lokiserve_commit_staged(self) -> dict:
        """Write the staged change into every KMM layer of this rank, or nothing."""
        staged: _Staged | None = getattr(self, "_lokiserve_staged", None)
        if staged is None:
            return {"ok": False, "error": "NothingStaged", "status": 409, "message": "no field staged on this rank"}
        self._lokiserve_staged = None
        self._lokiserve_last = None  # a failed commit must never roll back an older one
        model = self._lokiserve_model()
        memory = model.field_memory
        backup = memory.snapshot([staged.index])
        try:
            if staged.field is None:
                memory.zero(staged.index)
            else:
                memory.write(staged.index, staged.field)
        except Exception as exc:  # restore, then report
            memory.restore(backup)
            return error_result(exc) | {"trace": traceback.format_exc(limit=3)}
        self._lokiserve_last = _Committed(staged.index, backup, model.field_sources.get(staged.index, "checkpoint"))
        model.field_sources[staged.index] = staged.source
        return self._lokiserve_ok(**self._lokiserve_field_entry(model, staged.index))

    def lokiserve_rollback_last(self) -> dict:
        """Undo this rank's last commit (used when another rank's commit failed)."""
        last: _Committed | None = getattr(self, "_lokiserve_last", None)
        if last is None:
            return self._lokiserve_ok(rolled_back=False)
        model = self._lokiserve_model()
        model.field_memory.restore(last.backup)
        model.field_sources[last.index] = last.source
        self._lokiserve_last = None
        return self._lokiserve_ok(rolled_back=True)

    # -- reads -------------------------------------------------------------------

    def lokiserve_field_report(self) -> dict:
        """Every field's state and this rank's checksum of its contents."""
        model = self._lokiserve_model()
        return self._lokiserve_ok(
            backbone=model.backbone,
            fields=[self._lokiserve_field_entry(model, i) for i in range(model.config.kmm_num_fields)],
        )

    def lokiserve_export_field(self, field_id) -> dict:
        """This rank's part of a field as raw float32 bytes (keys full, values' d_v slice)."""
        try:
            model = self._lokiserve_model()
            memory = model.field_memory
            index = memory.index(field_id)
        except (KeyError, RuntimeError) as exc:
            return error_result(exc)
        return self._lokiserve_ok(
            name=memory.names[index],
            backbone=model.backbone,
            state=memory.state(index),
            tensors={k: (list(t.shape), t.numpy().tobytes()) for k, t in memory.tensors(index).items()},
        )

    def _lokiserve_field_entry(self, model, index: int) -> dict:
        memory = model.field_memory
        return {
            "index": index,
            "name": memory.names[index],
            "state": memory.state(index),
            "sha256": memory.checksum(index),  # this rank's shard
            "source": model.field_sources.get(index, "checkpoint"),
        }

