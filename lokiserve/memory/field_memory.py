"""``FieldMemory``: the one implementation of every operation on live field memory.

The reference model, the vLLM model on each tensor-parallel rank, the worker's
backup and rollback, the trainer and the evaluator all act on the same thing:
per KMM layer, ``keys [F, N, d_k]``, ``values [F, N, d_v]`` and ``enabled [F]``
(on a vLLM rank, ``values`` holds only this rank's ``d_v`` slice). Writing each
operation once, here, is what keeps "a swapped field lands exactly where a
loaded one would" and "a zeroed field contributes exactly 0" true everywhere.

A ``FieldMemory`` is a cheap view: it owns no tensors and is built on demand
over a model's memory modules (``model.field_memory``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch

from lokiserve.memory.files import Field, resolve_field_id, tensors_sha256


@dataclass(frozen=True)
class MemorySnapshot:
    """Copies of some fields' memory in every KMM layer, for ``FieldMemory.restore``."""

    fields: tuple[int, ...]
    layers: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]  # layer -> keys, values, enabled of ``fields``


class FieldMemory:
    """Zero, write, snapshot, restore, state, emptiness and checksum of fields.

    ``modules``: KMM layer index -> module with ``keys``, ``values`` and
    ``enabled`` tensors. ``value_shard`` maps a full ``[..., d_v]`` tensor to
    the part this process holds (a tensor-parallel rank's slice); identity
    for the reference model.
    """

    def __init__(self, modules: Mapping[int, torch.nn.Module], names: Sequence[str],
                 value_shard: Callable[[torch.Tensor], torch.Tensor] | None = None):
        self.modules = dict(sorted(modules.items()))
        self.names = list(names)
        self.value_shard = value_shard or (lambda v: v)

    def index(self, field_id: int | str) -> int:
        """A field's index from its name or index (``KeyError`` naming the fields)."""
        return resolve_field_id(self.names, field_id)

    # -- reads ---------------------------------------------------------------

    def state(self, f: int) -> str:
        """``active`` (takes part in retrieval) or ``zeroed`` (its term is exactly 0)."""
        mem = next(iter(self.modules.values()), None)
        return "active" if mem is None or bool(mem.enabled[f]) else "zeroed"

    def is_empty(self, f: int) -> bool:
        """Contributes nothing in every layer: disabled, or all-zero memory."""
        return all(not bool(m.enabled[f]) or not bool(m.keys[f].any() or m.values[f].any())
                   for m in self.modules.values())

    def tensors(self, f: int) -> dict[str, torch.Tensor]:
        """This process's copy of one field in field-file naming (float32, CPU):
        keys in full, values as held (a rank's ``d_v`` slice under tensor parallelism)."""
        out = {}
        for layer, mem in self.modules.items():
            out[f"layers.{layer}.keys"] = mem.keys.detach()[f].float().cpu().clone()
            out[f"layers.{layer}.values"] = mem.values.detach()[f].float().cpu().clone()
        return out

    def checksum(self, f: int) -> str:
        """sha256 of ``tensors(f)``: of the whole field on the reference model,
        of this rank's shard on a vLLM rank (what the workers report)."""
        return tensors_sha256(self.tensors(f))

    def export(self, f: int, backbone: str, **metadata: str) -> Field:
        """The live contents of field ``f`` as a ``Field`` bound to ``backbone``."""
        tensors = self.tensors(f)
        return Field(
            name=self.names[f],
            keys={layer: tensors[f"layers.{layer}.keys"] for layer in self.modules},
            values={layer: tensors[f"layers.{layer}.values"] for layer in self.modules},
            backbone=backbone,
            metadata=metadata,
        )

    # -- writes --------------------------------------------------------------

    @torch.no_grad()
    def load(self, layer: int, kind: str, tensor: torch.Tensor, f: int | None = None) -> None:
        """Copy ``keys`` / ``values`` / ``enabled`` of one layer into place, in
        place (compiled graphs keep their storage); values are sharded first.
        ``f`` None: every field (checkpoint loading); else field ``f`` only."""
        if kind not in ("keys", "values", "enabled"):
            raise KeyError(f"memory tensor kind {kind!r} is not keys, values or enabled")
        if kind == "values":
            tensor = self.value_shard(tensor)
        target = getattr(self.modules[layer], kind)
        (target if f is None else target[f]).copy_(tensor)

    @torch.no_grad()
    def write(self, f: int, field: Field) -> None:
        """Field ``f`` := ``field`` in every KMM layer (validated by the caller).
        An all-zero field is the empty field: it is stored and marked zeroed."""
        active = not field.is_empty()
        for layer, mem in self.modules.items():
            self.load(layer, "keys", field.keys[layer], f)
            self.load(layer, "values", field.values[layer], f)
            mem.enabled[f] = active

    @torch.no_grad()
    def set_enabled(self, f: int, on: bool) -> None:
        """Field ``f`` takes part in retrieval (or not) in every layer; contents unchanged."""
        for mem in self.modules.values():
            mem.enabled[f] = on

    @torch.no_grad()
    def zero(self, f: int) -> None:
        """Remove a field: its memory is cleared and it leaves retrieval."""
        for mem in self.modules.values():
            mem.keys[f].zero_()
            mem.values[f].zero_()
            mem.enabled[f] = False

    @torch.no_grad()
    def reinit(self, f: int, gen: torch.Generator) -> None:
        """Fresh memory for one field from the model's init distribution
        (keys N(0, 1), values N(0, 0.02)), enabled: a training field's start."""
        for mem in self.modules.values():
            mem.keys[f].copy_(torch.randn(mem.keys.shape[1:], generator=gen))
            mem.values[f].copy_(torch.randn(mem.values.shape[1:], generator=gen) * 0.02)
            mem.enabled[f] = True

    # -- snapshots -------------------------------------------------------------

    def snapshot(self, fields: Iterable[int] | None = None) -> MemorySnapshot:
        """Copies of ``fields`` (default: all) in every layer."""
        idx = tuple(range(len(self.names)) if fields is None else fields)
        sel = list(idx)
        return MemorySnapshot(idx, {layer: (m.keys.detach()[sel].clone(), m.values.detach()[sel].clone(),
                                            m.enabled[sel].clone())
                                    for layer, m in self.modules.items()})

    @torch.no_grad()
    def restore(self, snap: MemorySnapshot) -> None:
        """Put a snapshot's fields back exactly as they were."""
        sel = list(snap.fields)
        for layer, (keys, values, enabled) in snap.layers.items():
            mem = self.modules[layer]
            mem.keys[sel] = keys
            mem.values[sel] = values
            mem.enabled[sel] = enabled

    @contextlib.contextmanager
    def enabled_only(self, names: Iterable[str]):
        """Inside the block only the named fields (of those enabled) take part."""
        keep = set(names)
        snap = [m.enabled.clone() for m in self.modules.values()]
        mask = torch.tensor([n in keep for n in self.names])
        try:
            for m, e in zip(self.modules.values(), snap):
                m.enabled.copy_(e & mask.to(e.device))
            yield self
        finally:
            for m, e in zip(self.modules.values(), snap):
                m.enabled.copy_(e)


__all__ = ["FieldMemory", "MemorySnapshot"]
