"""Worker-side memory operations: the rank side of ``lokiserve.control.Rpc``.

vLLM mixes this class into its worker (``--worker-extension-cls``), so the
engine can call ``collective_rpc(Rpc.STAGE, ...)`` on every rank between two
engine steps; vLLM's unauthenticated dev-mode RPC endpoint is never needed.
Each rank validates and writes its own shard. Results are plain dicts (errors
included) so they cross process boundaries unchanged.

Changes are two-phase (``lokiserve.control.MemoryDriver`` drives them):
``stage`` validates and holds a set of changes (field files, or "make it
empty"), all or none, changing nothing; ``commit`` writes them after taking a
backup, and restores the backup itself if a write fails; ``rollback_last``
undoes this rank's last commit when another rank's (or replica's) commit
failed; ``discard`` drops what is held.
Every memory operation goes through the model's ``FieldMemory``.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass

from lokiserve.control import error_result
from lokiserve.memory import DEFAULT_MAX_FILE_BYTES, Field, FieldError, MemorySnapshot, read_field


# Fault injection for tests of the all-or-none guarantee across processes:
# "PHASE@REPLICA" makes the first PHASE (stage | commit) on every rank of that
# data-parallel replica fail. Unset in production; lokiserve_arm_fault does the
# same for one rank through collective_rpc.
FAULT_ENV = "LOKISERVE_INJECT_FAULT"


@dataclass
class _Staged:
    index: int
    field: Field | None  # None: make the field empty (zero)
    source: str


@dataclass
class _Committed:
    backup: MemorySnapshot  # every changed field, as it was
    sources: dict[int, str]  # each changed field's source before the commit


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

    def lokiserve_stage(self, changes: list[dict], max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> dict:
        """Validate every change and hold them all until commit, or hold none.
        A change is ``{"field": id, "path": file or None (zero), "source": str}``.
        Changes nothing in the model."""
        self._lokiserve_staged = []
        staged = []
        try:
            model = self._lokiserve_model()
            for change in changes:
                index = model.field_memory.index(change["field"])
                field = None
                if change.get("path") is not None:
                    field = read_field(change["path"], max_bytes=max_bytes)
                    model.validate_field(field)
                staged.append(_Staged(index, field, change.get("source") or str(change.get("path") or "zeroed")))
            self._lokiserve_take_fault("stage")
        except (FieldError, KeyError, OSError, RuntimeError) as exc:
            return error_result(exc)
        if len({s.index for s in staged}) != len(staged):
            return {"ok": False, "error": "DuplicateField", "status": 400, "message": "a field appears twice in one change"}
        self._lokiserve_staged = staged
        return self._lokiserve_ok(fields=[s.index for s in staged],
                                  sha256=[s.field.sha256() if s.field is not None else None for s in staged])

    def lokiserve_discard_staged(self) -> dict:
        self._lokiserve_staged = []
        return self._lokiserve_ok()

    # -- phase 2 ---------------------------------------------------------------

    def lokiserve_commit_staged(self) -> dict:
        """Write every staged change into every KMM layer of this rank, or nothing."""
        staged: list[_Staged] = getattr(self, "_lokiserve_staged", None) or []
        if not staged:
            return {"ok": False, "error": "NothingStaged", "status": 409, "message": "nothing staged on this rank"}
        self._lokiserve_staged = []
        self._lokiserve_last = None  # a failed commit must never roll back an older one
        model = self._lokiserve_model()
        memory = model.field_memory
        backup = memory.snapshot([s.index for s in staged])
        try:
            self._lokiserve_take_fault("commit")
            for s in staged:
                if s.field is None:
                    memory.zero(s.index)
                else:
                    memory.write(s.index, s.field)
        except Exception as exc:  # restore, then report
            memory.restore(backup)
            return error_result(exc) | {"trace": traceback.format_exc(limit=3)}
        self._lokiserve_last = _Committed(backup, {s.index: model.field_sources.get(s.index, "checkpoint")
                                                   for s in staged})
        for s in staged:
            model.field_sources[s.index] = s.source
        return self._lokiserve_ok(fields=[self._lokiserve_field_entry(model, s.index) for s in staged])

    def lokiserve_rollback_last(self) -> dict:
        """Undo this rank's last commit (used when another rank's commit failed)."""
        last: _Committed | None = getattr(self, "_lokiserve_last", None)
        if last is None:
            return self._lokiserve_ok(rolled_back=False)
        model = self._lokiserve_model()
        model.field_memory.restore(last.backup)
        model.field_sources.update(last.sources)
        self._lokiserve_last = None
        return self._lokiserve_ok(rolled_back=True)

    # -- fault injection (tests) -------------------------------------------------

    def lokiserve_arm_fault(self, phase: str) -> dict:
        """Make this rank's next ``stage`` or ``commit`` fail (reachable only
        through ``collective_rpc``, never over HTTP): how the tests prove that a
        failure on one rank of one replica changes nothing anywhere."""
        if phase not in ("stage", "commit"):
            return {"ok": False, "error": "BadPhase", "status": 400, "message": f"unknown phase {phase!r}"}
        self._lokiserve_fault = phase
        return self._lokiserve_ok(armed=phase)

    def _lokiserve_take_fault(self, phase: str) -> None:
        if getattr(self, "_lokiserve_fault", None) == phase:
            self._lokiserve_fault = None
            raise RuntimeError(f"injected {phase} fault on rank {self._lokiserve_rank()}")
        spec = os.environ.get(FAULT_ENV)
        if spec and not getattr(self, "_lokiserve_env_fault_taken", False):
            want, _, replica = spec.partition("@")
            # data_parallel_index: the engine's DP rank (vLLM resets data_parallel_rank
            # to 0 in every engine of a dense model, whose replicas run independently)
            pc = self.parallel_config
            here = getattr(pc, "data_parallel_index", None)
            here = pc.data_parallel_rank if here is None else here
            if want == phase and int(replica or 0) == here:
                self._lokiserve_env_fault_taken = True
                raise RuntimeError(f"injected {phase} fault on data-parallel replica {here} ({FAULT_ENV})")

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

