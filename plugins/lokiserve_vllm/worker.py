"""Worker-side memory operations, reachable by name through ``collective_rpc``.

vLLM mixes this class into its worker (``--worker-extension-cls``), so the
engine can call ``collective_rpc("lokiserve_stage_field", ...)`` on every
rank between two engine steps; vLLM's unauthenticated dev-mode RPC endpoint
is never needed. Each rank validates and writes its own shard. Results are
plain dicts (errors included) so they cross process boundaries unchanged.

Atomic changes are two-phase: ``stage`` validates and holds the field on
every rank; only if all ranks staged does the caller ``commit`` (which keeps
a backup and restores it if the write fails), otherwise it ``discard``s.
"""

from __future__ import annotations

import traceback

import torch

from lokiserve.memory import DEFAULT_MAX_FILE_BYTES, FieldError, read_field, resolve_field_id, tensors_sha256


def _error(exc: BaseException) -> dict:
    status = getattr(exc, "status", 500 if not isinstance(exc, KeyError) else 404)
    message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    return {"ok": False, "error": type(exc).__name__, "status": status, "message": message}


class LoKiFormerWorkerExtension:
    """Mixed into vLLM's worker class; ``self`` is the worker."""

    def _lokiserve_model(self):
        model = self.model_runner.get_model()
        if not hasattr(model, "memory_modules"):
            raise RuntimeError(f"{type(model).__name__} is not a LoKiFormer model")
        return model

    def _lokiserve_rank(self) -> int:
        from vllm.distributed import get_tensor_model_parallel_rank

        return get_tensor_model_parallel_rank()

    def _lokiserve_index(self, model, field_id) -> int:
        return resolve_field_id(list(model.config.kmm_field_names), field_id)

    # -- phase 1 / phase 2 -------------------------------------------------

    def lokiserve_stage_field(self, field_id, path: str, source: str | None = None, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> dict:
        """Read and fully validate a field file; hold it until commit. Changes nothing."""
        self._lokiserve_staged = None
        try:
            model = self._lokiserve_model()
            index = self._lokiserve_index(model, field_id)
            field = read_field(path, max_bytes=max_bytes)
            model.validate_field(field)
        except (FieldError, KeyError, OSError, RuntimeError) as exc:
            return _error(exc)
        self._lokiserve_staged = (index, field, source or str(path))
        return {"ok": True, "rank": self._lokiserve_rank(), "index": index, "sha256": field.sha256()}

    def lokiserve_commit_staged(self) -> dict:
        """Write the staged field into every KMM layer of this rank, or nothing."""
        staged = getattr(self, "_lokiserve_staged", None)
        if staged is None:
            return {"ok": False, "error": "NothingStaged", "status": 409, "message": "no field staged on this rank"}
        self._lokiserve_staged = None
        self._lokiserve_last = None  # a failed commit must never roll back an older one
        index, field, source = staged
        model = self._lokiserve_model()
        backup = self._lokiserve_backup(model, index)
        try:
            model.write_field(index, field)
        except Exception as exc:  # restore, then report
            self._lokiserve_restore(model, index, backup)
            return _error(exc) | {"trace": traceback.format_exc(limit=3)}
        self._lokiserve_last = (index, backup, model.field_sources.get(index, "checkpoint"))
        model.field_sources[index] = source
        return {"ok": True, "rank": self._lokiserve_rank(), **self._lokiserve_field_entry(model, index)}

    def lokiserve_rollback_last(self) -> dict:
        """Undo this rank's last commit (used when another rank's commit failed)."""
        last = getattr(self, "_lokiserve_last", None)
        if last is None:
            return {"ok": True, "rank": self._lokiserve_rank(), "rolled_back": False}
        index, backup, source = last
        model = self._lokiserve_model()
        self._lokiserve_restore(model, index, backup)
        model.field_sources[index] = source
        self._lokiserve_last = None
        return {"ok": True, "rank": self._lokiserve_rank(), "rolled_back": True}

    def lokiserve_discard_staged(self) -> dict:
        self._lokiserve_staged = None
        return {"ok": True, "rank": self._lokiserve_rank()}

    # -- one-shot operations ----------------------------------------------

    def lokiserve_apply_field(self, field_id, path: str, source: str | None = None, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> dict:
        """Validate, then write (single-rank convenience; multi-rank callers stage + commit)."""
        staged = self.lokiserve_stage_field(field_id, path, source, max_bytes)
        return staged if not staged["ok"] else self.lokiserve_commit_staged()

    def lokiserve_zero_field(self, field_id, source: str = "zeroed") -> dict:
        try:
            model = self._lokiserve_model()
            index = self._lokiserve_index(model, field_id)
        except (KeyError, RuntimeError) as exc:
            return _error(exc)
        model.zero_field(index)
        model.field_sources[index] = source
        return {"ok": True, "rank": self._lokiserve_rank(), **self._lokiserve_field_entry(model, index)}

    def lokiserve_field_report(self) -> dict:
        """Every field's state and this rank's checksum of its contents."""
        model = self._lokiserve_model()
        return {
            "ok": True,
            "rank": self._lokiserve_rank(),
            "backbone": model.backbone,
            "fields": [self._lokiserve_field_entry(model, i) for i in range(model.config.kmm_num_fields)],
        }

    def lokiserve_export_field(self, field_id) -> dict:
        """This rank's part of a field as raw float32 bytes (keys full, values' d_v slice)."""
        try:
            model = self._lokiserve_model()
            index = self._lokiserve_index(model, field_id)
        except (KeyError, RuntimeError) as exc:
            return _error(exc)
        tensors = model.local_field_tensors(index)
        return {
            "ok": True,
            "rank": self._lokiserve_rank(),
            "name": model.config.kmm_field_names[index],
            "backbone": model.backbone,
            "state": model.field_state(index),
            "tensors": {k: (list(t.shape), t.numpy().tobytes()) for k, t in tensors.items()},
        }

    # -- helpers -----------------------------------------------------------

    def _lokiserve_field_entry(self, model, index: int) -> dict:
        return {
            "index": index,
            "name": model.config.kmm_field_names[index],
            "state": model.field_state(index),
            "sha256": tensors_sha256(model.local_field_tensors(index)),  # this rank's shard
            "source": model.field_sources.get(index, "checkpoint"),
        }

    def _lokiserve_backup(self, model, index: int) -> dict:
        return {
            layer: (mem.keys[index].clone(), mem.values[index].clone(), bool(mem.enabled[index]))
            for layer, mem in model.memory_modules().items()
        }

    @torch.no_grad()
    def _lokiserve_restore(self, model, index: int, backup: dict) -> None:
        for layer, mem in model.memory_modules().items():
            keys, values, enabled = backup[layer]
            mem.keys[index].copy_(keys)
            mem.values[index].copy_(values)
            mem.enabled[index] = enabled
