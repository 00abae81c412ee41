"""Decoding with transformers' ``generate``: the LoKiFormer decode cache and the glue.

A LoKiFormer block carries two kinds of decode state: attention's KV and the
LFA convolution's last ``kernel - 1`` inputs. Neither fits a transformers
``Cache``, so the model keeps its own (``LoKiFormerCache``) and tells
``generate`` to feed only the tokens the cache has not seen; cached decoding
then gives exactly the tokens of recomputing from scratch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import GenerationMixin


@dataclass
class LayerState:
    """Decode state of one block: KV for attention, last inputs for the LFA conv."""

    k: torch.Tensor  # (B, kv_heads, T_past, head_dim)
    v: torch.Tensor  # (B, kv_heads, T_past, head_dim)
    conv: torch.Tensor  # (B, d, kernel-1): the last kernel-1 conv inputs


class LoKiFormerCache:
    """KV + LFA conv state for every layer; what makes cached decode exact."""

    def __init__(self, num_layers: int):
        self.layers: list[LayerState | None] = [None] * num_layers
        self.mask: torch.Tensor | None = None  # (B, T_past) attention mask so far

    def get_seq_length(self, layer_idx: int = 0) -> int:
        state = self.layers[layer_idx]
        return 0 if state is None else state.k.shape[2]


class LoKiFormerGenerationMixin(GenerationMixin):
    """``generate`` over ``LoKiFormerCache`` (mixed into ``LoKiFormerForCausalLM``)."""

    def prepare_inputs_for_generation(
        self, input_ids, past_key_values=None, attention_mask=None, use_cache=True, **kwargs
    ):
        """Feed only the tokens the cache has not seen; our cache is not a transformers Cache."""
        cache = past_key_values if isinstance(past_key_values, LoKiFormerCache) else None
        if use_cache and cache is None:
            cache = LoKiFormerCache(self.config.num_hidden_layers)
        if cache is not None:
            seen = cache.get_seq_length()
            input_ids = input_ids[:, seen:]
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "past_key_values": cache,
            "use_cache": use_cache,
        }

    def _update_model_kwargs_for_generation(self, outputs, model_kwargs, is_encoder_decoder=False, num_new_tokens=1):
        model_kwargs["past_key_values"] = outputs.past_key_values
        mask = model_kwargs.get("attention_mask")
        if mask is not None:
            model_kwargs["attention_mask"] = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=-1)
        return model_kwargs

    def _prepare_cache_for_generation(self, *args, **kwargs):
        """Our cache is created lazily in prepare_inputs_for_generation."""
        return None

    def _supports_default_dynamic_cache(self) -> bool:  # transformers asks before building a DynamicCache
        return False


__all__ = ["LayerState", "LoKiFormerCache", "LoKiFormerGenerationMixin"]
