"""Engine-side memory control: turn per-rank worker results into one answer.

The worker extension runs on every tensor-parallel rank; these functions
combine what the ranks returned (all succeeded, or which one failed and why),
assemble a field from its rank shards, and drive the two-phase change. They
take any ``collective_rpc`` callable, so the same logic serves vLLM's
synchronous ``LLM`` (tests, scripts) and, wrapped, the server's ``AsyncLLM``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from lokiserve.memory import Field

Rpc = Callable[..., list]


class MemoryOpError(RuntimeError):
    """A memory operation refused or failed on some rank; carries an HTTP status."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def first_failure(results: list[dict]) -> dict | None:
    return next((r for r in results if not r.get("ok")), None)


def raise_on_failure(results: list[dict]) -> list[dict]:
    bad = first_failure(results)
    if bad is not None:
        raise MemoryOpError(int(bad.get("status", 500)), bad.get("error", "Error"), bad.get("message", ""))
    return results


def assemble_field(results: list[dict], **metadata: str) -> tuple[Field, str]:
    """Join rank shards (keys replicated, values split on d_v) into one Field."""
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


@dataclass
class FieldStatus:
    index: int
    name: str
    state: str
    sha256: str  # of the whole field, as exported
    source: str


class MemoryControl:
    """Synchronous driver over ``rpc(method, args=...)`` (e.g. ``LLM.collective_rpc``).

    ``reset_prefix_cache`` is called after every change: cached KV and conv
    state computed with the old memory must never serve a new request.
    """

    def __init__(self, rpc: Rpc, reset_prefix_cache: Callable[[], object]):
        self.rpc = rpc
        self.reset_prefix_cache = reset_prefix_cache

    def apply_field(self, field_id, path: str, source: str | None = None) -> None:
        staged = self.rpc("lokiserve_stage_field", args=(field_id, str(path), source))
        if first_failure(staged):
            self.rpc("lokiserve_discard_staged")
            raise_on_failure(staged)
        committed = self.rpc("lokiserve_commit_staged")
        if first_failure(committed):
            self.rpc("lokiserve_rollback_last")
        self.reset_prefix_cache()
        raise_on_failure(committed)

    def zero_field(self, field_id) -> None:
        raise_on_failure(self.rpc("lokiserve_zero_field", args=(field_id,)))
        self.reset_prefix_cache()

    def export_field(self, field_id) -> tuple[Field, str]:
        return assemble_field(self.rpc("lokiserve_export_field", args=(field_id,)))

    def report(self) -> list[FieldStatus]:
        reports = raise_on_failure(self.rpc("lokiserve_field_report"))
        out = []
        for entry in reports[0]["fields"]:
            field, state = self.export_field(entry["index"])
            out.append(FieldStatus(entry["index"], entry["name"], state, field.sha256(), entry["source"]))
        return out
