"""``LoKiFormerConfig``: every number the reference model, the vLLM plugin and
field files agree on (the HF-style ``config.json`` of a LoKiFormer directory).

Validated at construction, so a bad ``config.json`` fails where it is read,
with the offending field named, instead of deep inside a forward pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from transformers import AutoConfig, PretrainedConfig

if TYPE_CHECKING:
    from lokiserve.memory import MemoryGeometry


class LoKiFormerConfig(PretrainedConfig):
    """Every number the reference model, the vLLM plugin and field files agree on."""

    model_type = "lokiformer"

    def __init__(
        self,
        vocab_size: int = 4096,
        hidden_size: int = 256,
        num_hidden_layers: int = 4,
        num_attention_heads: int = 4,
        num_key_value_heads: int = 2,
        head_dim: int = 64,
        intermediate_size: int = 704,
        rms_norm_eps: float = 1e-5,
        rope_theta: float = 10000.0,
        max_position_embeddings: int = 1024,
        tie_word_embeddings: bool = True,
        lfa_kernel_size: int = 4,
        lfa_enabled: bool = True,
        kv_latent_dim: int = 128,
        kmm_layers: list[int] | None = None,
        kmm_num_fields: int = 5,
        kmm_slots_per_field: int = 512,
        kmm_key_dim: int = 64,
        kmm_value_dim: int = 64,
        kmm_heads: int = 4,
        kmm_topk: int = 8,
        kmm_field_names: list[str] | None = None,
        kmm_value_codebook: str | None = None,
        **kwargs,
    ):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_key_value_heads
        self.head_dim = head_dim
        self.intermediate_size = intermediate_size
        self.rms_norm_eps = rms_norm_eps
        self.rope_theta = rope_theta
        self.max_position_embeddings = max_position_embeddings
        self.lfa_kernel_size = lfa_kernel_size
        # False: every LFA gate is exactly 0 (a converted Llama), so z = u. The
        # reference model computes it anyway (exactly u); the vLLM plugin serves
        # the model as plain attention, with no conv state, and checks the gates.
        self.lfa_enabled = lfa_enabled
        self.kv_latent_dim = kv_latent_dim
        self.kmm_layers = list(kmm_layers) if kmm_layers is not None else [1, 3]
        self.kmm_num_fields = kmm_num_fields
        self.kmm_slots_per_field = kmm_slots_per_field
        self.kmm_key_dim = kmm_key_dim
        self.kmm_value_dim = kmm_value_dim
        self.kmm_heads = kmm_heads
        self.kmm_topk = kmm_topk
        if kmm_field_names is None:
            kmm_field_names = [f"field{i}" for i in range(kmm_num_fields)]
        self.kmm_field_names = list(kmm_field_names)
        # Bound-slot models only (the demo): the value codebook's path inside the model
        # folder, which the field writer reads; the server never does.
        self.kmm_value_codebook = kmm_value_codebook
        kwargs.setdefault("architectures", ["LoKiFormerForCausalLM"])
        super().__init__(tie_word_embeddings=tie_word_embeddings, **kwargs)
        self.validate()

    def validate(self) -> None:
        """Refuse combinations the model cannot run, naming the problem."""
        positive = (
            "vocab_size hidden_size num_hidden_layers num_attention_heads num_key_value_heads "
            "head_dim intermediate_size lfa_kernel_size kv_latent_dim kmm_num_fields "
            "kmm_slots_per_field kmm_key_dim kmm_value_dim kmm_heads kmm_topk"
        ).split()
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.lfa_enabled, bool):
            raise ValueError(f"lfa_enabled must be true or false, got {self.lfa_enabled!r}")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"num_key_value_heads={self.num_key_value_heads} does not divide "
                f"num_attention_heads={self.num_attention_heads}"
            )
        if self.head_dim % 2:
            raise ValueError(f"head_dim={self.head_dim} must be even for RoPE")
        if self.kmm_topk > self.kmm_slots_per_field:
            raise ValueError(
                f"kmm_topk={self.kmm_topk} exceeds kmm_slots_per_field={self.kmm_slots_per_field}"
            )
        if len(self.kmm_field_names) != self.kmm_num_fields:
            raise ValueError(
                f"kmm_field_names has {len(self.kmm_field_names)} names "
                f"but kmm_num_fields={self.kmm_num_fields}"
            )
        seen: set[str] = set()
        for name in self.kmm_field_names:
            if not isinstance(name, str) or not name or name.isdigit():
                raise ValueError(f"field name {name!r} must be a non-empty, non-numeric string")
            if name in seen:
                raise ValueError(f"duplicate field name {name!r} in kmm_field_names")
            seen.add(name)
        if self.kmm_value_codebook is not None and (
            not isinstance(self.kmm_value_codebook, str) or not self.kmm_value_codebook
            or self.kmm_value_codebook.startswith("/") or ".." in self.kmm_value_codebook.split("/")
        ):
            raise ValueError(f"kmm_value_codebook must be a relative path inside the model folder, "
                             f"got {self.kmm_value_codebook!r}")
        if len(set(self.kmm_layers)) != len(self.kmm_layers):
            raise ValueError(f"duplicate layer in kmm_layers={self.kmm_layers}")
        for layer in self.kmm_layers:
            if not isinstance(layer, int) or not 0 <= layer < self.num_hidden_layers:
                raise ValueError(
                    f"KMM layer {layer!r} out of range for num_hidden_layers={self.num_hidden_layers}"
                )

    @property
    def layer_types(self) -> list[str] | None:
        """What vLLM reads to decide whether a hybrid-capable model really has
        state layers: all "full_attention" (no LFA state) when ``lfa_enabled`` is
        False, else None (hybrid). A property, so it is never saved."""
        if getattr(self, "lfa_enabled", True):
            return None
        return ["full_attention"] * self.num_hidden_layers

    @property
    def memory_geometry(self) -> "MemoryGeometry":
        from lokiserve.memory import MemoryGeometry

        return MemoryGeometry(
            layers=tuple(sorted(self.kmm_layers)),
            num_fields=self.kmm_num_fields,
            slots=self.kmm_slots_per_field,
            key_dim=self.kmm_key_dim,
            value_dim=self.kmm_value_dim,
            heads=self.kmm_heads,
            topk=self.kmm_topk,
        )


AutoConfig.register("lokiformer", LoKiFormerConfig, exist_ok=True)

__all__ = ["LoKiFormerConfig"]
