"""Llama weights -> LoKiFormer weights, exact by construction.

* LFA: gate ``g = 0`` and conv weight 0, so ``z = u + 0 * dwconv(u) = u``;
  the config says so (``lfa_enabled=False``), so vLLM serves the model as
  plain attention, without the conv state a live LFA needs.
* Latent KV: ``W_dkv = [W_k; W_v]`` (kv_latent_dim = 2*kv_heads*head_dim),
  ``W_uk = [I 0]``, ``W_uv = [0 I]``: multiplying by an identity block is exact
  in floating point, so k and v are the source's (up to the summation order of
  the one fused ``W_dkv`` matmul).
* Memory: every field's keys and values zero and ``enabled`` False, so the
  KMM term is exactly 0. W_mq and W_mo come from ``readpath.py``.
Every other tensor is copied under its LoKiFormer name; a source tensor
with no LoKiFormer counterpart is an error, never silently dropped.
"""

from __future__ import annotations

import torch

from lokiserve.convert.errors import ConvertError
from lokiserve.convert.layout import MemoryLayout
from lokiserve.convert.source import head_dim, rope_theta
from lokiserve.model import LoKiFormerConfig

# Source name suffix -> LoKiFormer name suffix, per layer (k/v are fused below).
LAYER_RENAMES = {
    "input_layernorm.weight": "input_layernorm.weight",
    "post_attention_layernorm.weight": "post_attention_layernorm.weight",
    "self_attn.q_proj.weight": "attn.q_proj.weight",
    "self_attn.o_proj.weight": "attn.o_proj.weight",
    "mlp.gate_proj.weight": "mlp.gate_proj.weight",
    "mlp.up_proj.weight": "mlp.up_proj.weight",
    "mlp.down_proj.weight": "mlp.down_proj.weight",
}
LFA_KERNEL_SIZE = 4


def lokiformer_config(src_config, layout: MemoryLayout, dtype: torch.dtype) -> LoKiFormerConfig:
    """The LoKiFormer config that reproduces ``src_config``, with ``layout``'s memory."""
    hd = head_dim(src_config)
    latent = 2 * src_config.num_key_value_heads * hd
    memory = layout.config_kwargs(src_config.num_hidden_layers, latent, src_config.hidden_size)
    try:
        config = LoKiFormerConfig(
            vocab_size=src_config.vocab_size,
            hidden_size=src_config.hidden_size,
            num_hidden_layers=src_config.num_hidden_layers,
            num_attention_heads=src_config.num_attention_heads,
            num_key_value_heads=src_config.num_key_value_heads,
            head_dim=hd,
            intermediate_size=src_config.intermediate_size,
            rms_norm_eps=src_config.rms_norm_eps,
            rope_theta=rope_theta(src_config),
            max_position_embeddings=src_config.max_position_embeddings,
            tie_word_embeddings=bool(src_config.tie_word_embeddings),
            lfa_kernel_size=LFA_KERNEL_SIZE,
            lfa_enabled=False,
            kv_latent_dim=latent,
            bos_token_id=src_config.bos_token_id,
            eos_token_id=src_config.eos_token_id,
            pad_token_id=src_config.pad_token_id,
            **memory,
        )
    except ValueError as exc:
        raise ConvertError(f"invalid LoKiFormer geometry: {exc}") from None
    config.dtype = dtype
    return config


@torch.no_grad()
def lokiformer_state_dict(
    src_state: dict[str, torch.Tensor],
    config: LoKiFormerConfig,
    read_path: dict[int, tuple[torch.Tensor, torch.Tensor]],
    dtype: torch.dtype,
) -> dict[str, torch.Tensor]:
    """Every tensor of the converted checkpoint (tied lm_head left out)."""
    src = dict(src_state)
    out: dict[str, torch.Tensor] = {}

    def take(name: str) -> torch.Tensor:
        if name not in src:
            raise ConvertError(f"source checkpoint has no tensor {name}")
        return src.pop(name)

    out["model.embed_tokens.weight"] = take("model.embed_tokens.weight")
    out["model.norm.weight"] = take("model.norm.weight")
    lm_head = src.pop("lm_head.weight", None)
    if not config.tie_word_embeddings:
        if lm_head is None:
            raise ConvertError("source has tie_word_embeddings=False but no lm_head.weight")
        out["lm_head.weight"] = lm_head
    d, kv = config.hidden_size, config.num_key_value_heads * config.head_dim
    eye, zero = torch.eye(kv), torch.zeros(kv, kv)
    g = config.memory_geometry
    for i in range(config.num_hidden_layers):
        p, q = f"model.layers.{i}.", f"model.layers.{i}."
        for old, new in LAYER_RENAMES.items():
            out[q + new] = take(p + old)
        out[q + "attn.kv_down.weight"] = torch.cat([take(p + "self_attn.k_proj.weight"), take(p + "self_attn.v_proj.weight")])
        out[q + "attn.k_up.weight"] = torch.cat([eye, zero], dim=1)  # (kv, 2kv)
        out[q + "attn.v_up.weight"] = torch.cat([zero, eye], dim=1)
        out[q + "lfa.conv_weight"] = torch.zeros(d, config.lfa_kernel_size)
        out[q + "lfa.gate"] = torch.zeros(d)
        if i in config.kmm_layers:
            w_mq, w_mo = read_path[i]
            out[q + "kmm.query.weight"] = w_mq
            out[q + "kmm.out.weight"] = w_mo
            out[q + "kmm.keys"] = torch.zeros(g.num_fields, g.slots, g.key_dim)
            out[q + "kmm.values"] = torch.zeros(g.num_fields, g.slots, g.value_dim)
            out[q + "kmm.enabled"] = torch.zeros(g.num_fields, dtype=torch.bool)
    if src:
        raise ConvertError(f"source tensors with no LoKiFormer counterpart: {', '.join(sorted(src)[:5])}")
    return {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in out.items()}


__all__ = ["lokiformer_config", "lokiformer_state_dict", "LAYER_RENAMES"]
