import pytest
from transformers import AutoConfig

from lokiserve.model import LoKiFormerConfig
from tests.conftest import tiny_config


def test_registered_with_autoconfig(tmp_path):
    cfg = tiny_config()
    cfg.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, LoKiFormerConfig)
    assert loaded.model_type == "lokiformer"
    assert loaded.kmm_field_names == ["alpha", "beta", "gamma"]
    assert loaded.architectures == ["LoKiFormerForCausalLM"]


def test_design_attribute_names_present():
    cfg = LoKiFormerConfig()
    for name in (
        "vocab_size hidden_size num_hidden_layers num_attention_heads num_key_value_heads head_dim "
        "intermediate_size rms_norm_eps rope_theta max_position_embeddings tie_word_embeddings "
        "lfa_kernel_size kv_latent_dim kmm_layers kmm_num_fields kmm_slots_per_field kmm_key_dim "
        "kmm_value_dim kmm_heads kmm_topk kmm_field_names"
    ).split():
        assert hasattr(cfg, name), name


@pytest.mark.parametrize(
    "overrides, words",
    [
        (dict(kmm_topk=17), "kmm_topk"),
        (dict(kmm_field_names=["a", "a", "b"]), "duplicate field name"),
        (dict(kmm_field_names=["a", "b"]), "kmm_field_names has 2"),
        (dict(num_key_value_heads=3), "does not divide"),
        (dict(kmm_layers=[0, 2]), "out of range"),
        (dict(kmm_layers=[-1]), "out of range"),
        (dict(kmm_layers=[1, 1]), "duplicate layer"),
        (dict(hidden_size=0), "hidden_size"),
        (dict(kmm_field_names=["a", "7", "b"]), "non-numeric"),
    ],
)
def test_invalid_combinations_name_the_problem(overrides, words):
    with pytest.raises(ValueError, match=words):
        tiny_config(**overrides)
