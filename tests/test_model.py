"""The reference model: shapes, causality, exact cached decode, field API, checkpoints."""

import torch

from lokiserve.model import LoKiFormerCache, LoKiFormerForCausalLM
from tests.conftest import make_model


def test_forward_shapes_and_finite(model):
    x = torch.randint(0, 97, (3, 11))
    logits = model(x).logits
    assert logits.shape == (3, 11, 97)
    assert torch.isfinite(logits).all()


def test_causality_future_tokens_never_change_past_logits(model):
    x = torch.randint(0, 97, (2, 12))
    y = x.clone()
    y[:, 7:] = torch.randint(0, 97, (2, 5))
    a, b = model(x).logits, model(y).logits
    torch.testing.assert_close(a[:, :7], b[:, :7], rtol=0, atol=1e-6)
    assert not torch.allclose(a[:, 7:], b[:, 7:])


def test_cached_generation_equals_uncached(model):
    x = torch.randint(0, 97, (2, 9))
    cached = model.generate(x, max_new_tokens=12, do_sample=False, use_cache=True)
    fresh = model.generate(x, max_new_tokens=12, do_sample=False, use_cache=False)
    assert torch.equal(cached, fresh)


def test_incremental_decode_matches_full_forward_logits(model):
    """The cache carries KV and the LFA conv state: token-by-token == one shot."""
    x = torch.randint(0, 97, (2, 10))
    full = model(x).logits
    cache = LoKiFormerCache(model.config.num_hidden_layers)
    steps = [model(x[:, :3], past_key_values=cache, use_cache=True).logits]
    for t in range(3, 10):
        steps.append(model(x[:, t : t + 1], past_key_values=cache, use_cache=True).logits)
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-5, atol=1e-5)
    assert cache.layers[0].conv.shape == (2, 64, 3)  # (B, d, kernel-1)


def test_left_padded_batch_matches_single_prompts(model):
    a = torch.randint(1, 97, (1, 7))
    b = torch.randint(1, 97, (1, 4))
    batch = torch.cat([a, torch.cat([torch.zeros(1, 3, dtype=torch.long), b], 1)])
    mask = torch.tensor([[1] * 7, [0] * 3 + [1] * 4])
    out = model.generate(batch, attention_mask=mask, max_new_tokens=6, do_sample=False)
    ga = model.generate(a, max_new_tokens=6, do_sample=False)
    gb = model.generate(b, max_new_tokens=6, do_sample=False)
    assert torch.equal(out[0, 7:], ga[0, 7:])
    assert torch.equal(out[1, 7:], gb[0, 4:])


def test_lfa_changes_outputs():
    """The conv really is in the path: zeroing its gate changes the logits."""
    model = make_model()
    x = torch.randint(0, 97, (1, 8))
    before = model(x).logits
    with torch.no_grad():
        for layer in model.model.layers:
            layer.lfa.gate.zero_()
    assert not torch.allclose(before, model(x).logits)


def test_save_and_load_round_trip(model, tmp_path):
    model.zero_field("gamma")
    model.save_pretrained(tmp_path)
    loaded = LoKiFormerForCausalLM.from_pretrained(tmp_path).eval()
    x = torch.randint(0, 97, (2, 8))
    assert torch.equal(model(x).logits, loaded(x).logits)
    assert loaded.field_state("gamma") == "zeroed"
    assert loaded.backbone_hash() == model.backbone_hash()
    names = set(loaded.state_dict())
    assert "model.layers.0.kmm.keys" in names and "model.layers.1.kmm.values" in names


def test_zero_field_changes_output_when_field_matters(model):
    x = torch.randint(0, 97, (2, 8))
    before = model(x).logits
    model.zero_field("beta")
    assert model.field_state("beta") == "zeroed"
    assert not torch.allclose(before, model(x).logits)


def test_apply_exported_field_restores_bit_exactly(model):
    x = torch.randint(0, 97, (2, 8))
    before = model(x).logits
    saved = model.export_field(1)
    model.zero_field(1)
    model.apply_field("beta", saved)
    assert model.field_state(1) == "active"
    assert torch.equal(before, model(x).logits)


def test_all_fields_zeroed_equals_model_without_kmm(model):
    x = torch.randint(0, 97, (2, 8))
    for name in model.field_names:
        model.zero_field(name)
    plain = make_model(kmm_layers=[])
    result = plain.load_state_dict(model.state_dict(), strict=False)
    assert result.unexpected_keys and all(".kmm." in k for k in result.unexpected_keys)
    assert not result.missing_keys
    assert torch.equal(model(x).logits, plain(x).logits)


def test_zeroed_field_is_excluded_from_retrieval_exactly():
    """Zeroing must remove the field's term, not just its values: the output
    equals a model whose other fields are identical and this one is masked."""
    model = make_model()
    x = torch.randint(0, 97, (1, 6))
    with torch.no_grad():
        for mem in model.memory_modules().values():
            mem.enabled[2] = False
    masked = model(x).logits
    model.zero_field(2)
    assert torch.equal(masked, model(x).logits)


def test_backbone_hash_ignores_memory_but_not_weights(model):
    h = model.backbone_hash()
    model.zero_field(0)
    assert model.backbone_hash() == h
    with torch.no_grad():
        model.model.layers[0].mlp.up_proj.weight[0, 0] += 1.0
    assert model.backbone_hash() != h


def test_field_ids_by_name_and_index(model):
    assert model.field_names == ["alpha", "beta", "gamma"]
    assert model.field_index("gamma") == 2 == model.field_index("2") == model.field_index(2)
    for bad in ("delta", 3, "-1", "", None):
        try:
            model.field_index(bad)
        except KeyError:
            continue
        raise AssertionError(f"{bad!r} accepted")
