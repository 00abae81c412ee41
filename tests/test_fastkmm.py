"""The training fast path of the KMM, reached through the model's declared
interface (``KmmOptions``), against the reference forward."""

from __future__ import annotations

import torch

from lokiserve.model import KmmOptions
from lokiserve.train.fastkmm import fast_retrieval
from tests.conftest import make_model


def test_fast_kmm_matches_reference_forward():
    model = make_model()
    x = torch.randint(0, 97, (3, 9))
    scale = torch.ones(3, 3)
    scale[1, 2] = 0.0
    with torch.no_grad():
        model.memory_modules()[0].enabled[1] = False
        ref = model(x, kmm_field_scale=scale).logits
        fast = model(x, kmm_field_scale=scale, kmm=KmmOptions(retrieval=fast_retrieval)).logits
        mask = torch.ones(3, 9, dtype=torch.bool)
        fast2 = model(x, kmm=KmmOptions(field_scale=scale, token_mask=mask, retrieval=fast_retrieval)).logits
    torch.testing.assert_close(fast, ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fast2, ref, rtol=1e-4, atol=1e-4)


def test_fast_kmm_routes_memory_gradient_to_own_field_only():
    model = make_model()
    x = torch.randint(0, 97, (2, 6))
    grad_fields = torch.tensor([[True, False, False], [True, False, False]])
    model(x, kmm=KmmOptions(grad_fields=grad_fields, retrieval=fast_retrieval)).logits.sum().backward()
    for mem in model.memory_modules().values():
        assert mem.keys.grad[0].abs().sum() > 0 and mem.values.grad[0].abs().sum() > 0
        assert mem.keys.grad[1:].abs().sum() == 0 and mem.values.grad[1:].abs().sum() == 0
        assert mem.query.weight.grad.abs().sum() > 0  # the query still learns from every field


def test_value_stand_ins_and_query_capture_agree_on_both_paths():
    """``KmmOptions.values`` replaces every layer's values for one forward (the
    model's own stay untouched) and ``queries`` captures the real tokens'
    queries, identically on the reference and the fast path."""
    model = make_model()
    x = torch.randint(0, 97, (2, 7))
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[1, 5:] = False
    mem0 = next(iter(model.memory_modules().values()))
    table = torch.randn_like(mem0.values) * 3
    own = {i: m.values.detach().clone() for i, m in model.memory_modules().items()}
    with torch.no_grad():
        ref_q, fast_q = {}, {}
        ref = model(x, kmm=KmmOptions(values=table, token_mask=mask, queries=ref_q)).logits
        fast = model(x, kmm=KmmOptions(values=table, token_mask=mask, queries=fast_q, retrieval=fast_retrieval)).logits
        plain = model(x).logits
    torch.testing.assert_close(fast[mask], ref[mask], rtol=1e-4, atol=1e-4)  # padding may differ
    assert not torch.allclose(ref[mask], plain[mask])  # the stand-in values were read
    assert set(ref_q) == set(fast_q) == set(model.memory_modules())
    for layer in ref_q:
        assert ref_q[layer].shape == (int(mask.sum()), mem0.heads, mem0.key_dim)
        torch.testing.assert_close(fast_q[layer], ref_q[layer])
    for i, m in model.memory_modules().items():
        assert torch.equal(m.values, own[i])
