"""``FieldMemory``: the one implementation of every live field operation, on
the reference model and on a sharded (tensor-parallel-rank) view."""

from __future__ import annotations

import pytest
import torch

from lokiserve.memory import FieldMemory, tensors_sha256
from tests.conftest import make_model


def test_zero_write_state_empty_and_checksum(model):
    memory = model.field_memory
    f = memory.index("beta")
    assert memory.state(f) == "active" and not memory.is_empty(f)
    field = memory.export(f, model.backbone_hash())
    assert memory.checksum(f) == field.sha256() == tensors_sha256(memory.tensors(f))
    memory.zero(f)
    assert memory.state(f) == "zeroed" and memory.is_empty(f)
    assert all(not m.keys[f].any() and not m.values[f].any() for m in memory.modules.values())
    memory.write(f, field)
    assert memory.state(f) == "active" and memory.checksum(f) == field.sha256()
    empty = memory.export(memory.index("gamma"), model.backbone_hash())
    for t in empty.tensors().values():
        t.zero_()
    memory.write(f, empty)  # an all-zero field is the empty field: stored, and marked zeroed
    assert memory.state(f) == "zeroed"


def test_snapshot_restore_is_exact_and_touches_only_its_fields(model):
    memory = model.field_memory
    before = {n: t.clone() for n, t in model.state_dict().items()}
    snap = memory.snapshot([0, 2])
    memory.zero(0)
    memory.reinit(2, torch.Generator().manual_seed(3))
    memory.zero(1)  # not in the snapshot: stays zeroed after restore
    memory.restore(snap)
    for n, t in model.state_dict().items():
        if ".kmm." in n and n.rsplit(".", 1)[-1] in ("keys", "values", "enabled"):
            assert torch.equal(t[[0, 2]], before[n][[0, 2]]), n
            assert not torch.equal(t[1], before[n][1]) or n.endswith("enabled"), n
        else:
            assert torch.equal(t, before[n]), n
    assert memory.state(1) == "zeroed"


def test_enabled_only_restores_the_mask(model):
    memory = model.field_memory
    memory.zero(2)
    with memory.enabled_only(["alpha", "gamma"]):
        assert [memory.state(i) for i in range(3)] == ["active", "zeroed", "zeroed"]
    assert [memory.state(i) for i in range(3)] == ["active", "active", "zeroed"]


def test_sharded_view_writes_and_reports_this_ranks_slice():
    """The vLLM rank's view: values hold a d_v slice; a write of a whole field
    lands exactly as the checkpoint loader's sharding would place it."""
    full = make_model()
    field = full.export_field("alpha")
    shard = make_model(seed=5)
    d_v = full.config.kmm_value_dim
    for mem in shard.memory_modules().values():  # rank 1 of 2 keeps columns [d_v/2, d_v)
        mem.values = torch.nn.Parameter(mem.values.detach()[..., d_v // 2:].clone())
    view = FieldMemory(shard.memory_modules(), shard.field_names, value_shard=lambda v: v[..., d_v // 2:])
    view.write(0, field)
    for layer, mem in shard.memory_modules().items():
        assert torch.equal(mem.keys[0], field.keys[layer])
        assert torch.equal(mem.values[0], field.values[layer][..., d_v // 2:])
    tensors = view.tensors(0)
    assert tensors[f"layers.{next(iter(field.keys))}.values"].shape[-1] == d_v // 2
    with pytest.raises(KeyError, match="unknown field"):
        view.index("nope")
    with pytest.raises(KeyError, match="kind"):
        view.load(0, "queries", torch.zeros(1))
