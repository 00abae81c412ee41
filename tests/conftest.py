"""Shared fixtures: a tiny random LoKiFormer that every CPU test can afford."""

from __future__ import annotations

import pytest
import torch

from lokiserve.model import LoKiFormerConfig, LoKiFormerForCausalLM


def tiny_config(**overrides) -> LoKiFormerConfig:
    """KMM on every layer and LFA kernel 4: the cases issue 2 asks to cover."""
    base = dict(
        vocab_size=97,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        intermediate_size=128,
        kv_latent_dim=32,
        lfa_kernel_size=4,
        kmm_layers=[0, 1],
        kmm_num_fields=3,
        kmm_slots_per_field=16,
        kmm_key_dim=16,
        kmm_value_dim=16,
        kmm_heads=2,
        kmm_topk=4,
        kmm_field_names=["alpha", "beta", "gamma"],
    )
    base.update(overrides)
    return LoKiFormerConfig(**base)


def make_model(seed: int = 0, **overrides) -> LoKiFormerForCausalLM:
    torch.manual_seed(seed)
    model = LoKiFormerForCausalLM(tiny_config(**overrides)).eval()
    # Random init gives near-zero memory values; scale them so fields matter.
    with torch.no_grad():
        for mem in model.memory_modules().values():
            mem.values.normal_(std=1.0)
            mem.out.weight.normal_(std=0.2)
    return model


@pytest.fixture
def model() -> LoKiFormerForCausalLM:
    return make_model()
