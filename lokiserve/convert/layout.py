"""Default memory geometry of a converted model, and its validation.

Why these defaults (every one is a flag of ``lokiserve convert``):

* **4 fields** ``general, edits, user, reserve``: a bulk fact set, a small
  field of corrections that can be swapped without touching the bulk, a
  per-deployment field, and a spare. The geometry is part of the backbone
  hash, so adding a field later invalidates every written field: leave spares.
* **4096 slots per field**: "thousands of facts" at one fact per slot (the
  bound-slot scheme that made the demo editable), a power of two for kernel
  tiles. An empty field costs nothing at decode: it is disabled and skipped.
* **KMM layers at L/7, 2L/7, 3L/7** (4, 8, 12 of SmolLM2's 30): early-middle
  layers, where the project's probe injected fact values successfully
  (layers 4, 8, 12), leaving the later layers to decode the retrieved value.
* **1 head x d_k 128, d_v 256**: decode cost is ``heads * live_slots * d_k``
  multiply-adds per KMM layer per token: 1*4096*128 = 0.5 M per live field and
  layer, about 0.4% of SmolLM2-135M's ~135 M per token, so even every field
  live in three layers stays under 5%. One wide head rather than 4 x 32
  because a fact's key is a linear classifier on the query (``lokiserve.edit
  .routing``): measured on SmolLM2 with 8 real facts, keys fitted to a
  subject's queries separated it from every other position of every text in
  8/8 cases with one 128-dim head, and in 0/8 with the best of four 32-dim
  heads (the same 128 query directions, split). 128 query dims fit inside the
  192 pre-RoPE key dims (so a key-subspace query is possible); 256 output
  dims span under half of the 576-dim residual, so a field writes into a
  subspace rather than over the whole stream.
* **top-k 4**: the demo's measured setting; with one fact per slot the right
  slot must win outright, and a small k keeps the softmax sharp.
"""

from __future__ import annotations

from dataclasses import dataclass

from lokiserve.convert.errors import ConvertError

DEFAULT_FIELD_NAMES = ("general", "edits", "user", "reserve")


def default_kmm_layers(num_layers: int) -> tuple[int, ...]:
    """Layers L/7, 2L/7, 3L/7 (rounded down, deduplicated): early-middle depth."""
    return tuple(sorted({num_layers * j // 7 for j in (1, 2, 3)}))


@dataclass(frozen=True)
class MemoryLayout:
    """User-settable memory geometry; ``None`` layers means the depth-based default."""

    field_names: tuple[str, ...] = DEFAULT_FIELD_NAMES
    slots_per_field: int = 4096
    layers: tuple[int, ...] | None = None
    heads: int = 1
    key_dim: int = 128
    value_dim: int = 256
    topk: int = 4

    def config_kwargs(self, num_layers: int, kv_latent_dim: int, hidden_size: int) -> dict:
        """LoKiFormerConfig kwargs for a source of this shape; refuses, by name,
        a geometry the model-derived read path cannot fill."""
        layers = tuple(self.layers) if self.layers is not None else default_kmm_layers(num_layers)
        for name in ("slots_per_field", "heads", "key_dim", "value_dim", "topk"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConvertError(f"{name} must be a positive integer, got {value!r}")
        if not self.field_names:
            raise ConvertError("at least one field name is needed")
        if not layers:
            raise ConvertError("at least one KMM layer is needed")
        bad = [i for i in layers if not 0 <= i < num_layers]
        if bad:
            raise ConvertError(f"KMM layers {bad} out of range: the source has {num_layers} layers (0..{num_layers - 1})")
        if self.topk > self.slots_per_field:
            raise ConvertError(f"topk={self.topk} exceeds slots_per_field={self.slots_per_field}")
        if self.heads * self.key_dim > kv_latent_dim:
            raise ConvertError(
                f"heads*key_dim={self.heads}*{self.key_dim}={self.heads * self.key_dim} exceeds the KV latent "
                f"dim {kv_latent_dim}: W_mq's rows are directions of the latent, there are only {kv_latent_dim}"
            )
        if self.heads * self.value_dim > hidden_size:
            raise ConvertError(
                f"heads*value_dim={self.heads}*{self.value_dim}={self.heads * self.value_dim} exceeds "
                f"hidden_size={hidden_size}: W_mo's columns are directions of the residual stream"
            )
        return dict(
            kmm_layers=list(layers),
            kmm_num_fields=len(self.field_names),
            kmm_field_names=list(self.field_names),
            kmm_slots_per_field=self.slots_per_field,
            kmm_heads=self.heads,
            kmm_key_dim=self.key_dim,
            kmm_value_dim=self.value_dim,
            kmm_topk=self.topk,
        )


__all__ = ["DEFAULT_FIELD_NAMES", "MemoryLayout", "default_kmm_layers"]
