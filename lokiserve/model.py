"""LoKiFormer reference model in plain PyTorch: the oracle for every other part.

How it departs from a standard decoder (RMSNorm, RoPE, SwiGLU, GQA):

* Local Fusion Attention (LFA): the normalised input of attention first goes
  through a causal depthwise convolution over time, fused back with a learned
  per-channel gate, ``z = u + g * dwconv(u)``. Decoding therefore carries a
  rolling conv state (last ``lfa_kernel_size - 1`` inputs) beside the KV cache.
* Latent KV: keys and values come from a low-rank latent ``c = W_dkv z``.
* Knowledge Memory Module (KMM): the same latent queries a parametric
  key-value memory split into named *fields*; each enabled field is searched
  independently (top-k, softmax over the selected), outputs summed. A field is
  the same slice of the memory in every KMM layer, which is what makes it
  addressable: it can be exported, replaced or zeroed at runtime.

Attention and memory read the same block input and are added in parallel:
``h = h + attn(z) + kmm(c)``; then ``h = h + swiglu(rmsnorm(h))``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from lokiserve.config import LoKiFormerConfig
from lokiserve.generation import LayerState, LoKiFormerCache, LoKiFormerGenerationMixin
from lokiserve.kernels.kmm.naive import kmm_field_outputs
from lokiserve.memory import Field, FieldMemory, backbone_hash, is_backbone_tensor, is_memory_tensor


# --------------------------------------------------------------------------- modules


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalise in fp32 like vLLM's RMSNorm, so both agree in low precision.
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (xf * self.weight.float()).to(x.dtype)


class LocalFusion(nn.Module):
    """LFA: z = u + g * dwconv_causal(u), a depthwise conv over time with a gate."""

    def __init__(self, dim: int, kernel_size: int):
        super().__init__()
        self.kernel_size = kernel_size
        self.conv_weight = nn.Parameter(torch.empty(dim, kernel_size))  # (d, K), last tap = current token
        self.gate = nn.Parameter(torch.empty(dim))

    def forward(
        self, u: torch.Tensor, conv_state: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """u: (B, T, d); conv_state: (B, d, K-1) past inputs or None (zeros).

        Returns z (B, T, d) and the new conv state (B, d, K-1).
        """
        B, T, d = u.shape
        K = self.kernel_size
        x = u.transpose(1, 2)  # (B, d, T)
        if conv_state is None:
            conv_state = x.new_zeros(B, d, K - 1)
        x = torch.cat([conv_state.to(x.dtype), x], dim=-1)  # (B, d, K-1+T)
        y = F.conv1d(x, self.conv_weight.unsqueeze(1), groups=d)  # (B, d, T)
        new_state = x[:, :, x.shape[-1] - (K - 1) :]
        z = u + self.gate * y.transpose(1, 2)
        return z, new_state


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def rope_cos_sin(
    positions: torch.Tensor, head_dim: int, theta: float, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """Neox-style RoPE tables for positions (B, T) -> (B, 1, T, head_dim)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=positions.device).float() / head_dim))
    freqs = positions.float().unsqueeze(-1) * inv_freq  # (B, T, hd/2)
    emb = torch.cat([freqs, freqs], dim=-1).unsqueeze(1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


class LatentAttention(nn.Module):
    """Causal GQA attention whose keys and values come from a low-rank latent."""

    def __init__(self, config: LoKiFormerConfig):
        super().__init__()
        d = config.hidden_size
        self.n_heads = config.num_attention_heads
        self.n_kv = config.num_key_value_heads
        self.head_dim = config.head_dim
        self.q_proj = nn.Linear(d, self.n_heads * self.head_dim, bias=False)
        self.kv_down = nn.Linear(d, config.kv_latent_dim, bias=False)  # W_dkv
        self.k_up = nn.Linear(config.kv_latent_dim, self.n_kv * self.head_dim, bias=False)  # W_uk
        self.v_up = nn.Linear(config.kv_latent_dim, self.n_kv * self.head_dim, bias=False)  # W_uv
        self.o_proj = nn.Linear(self.n_heads * self.head_dim, d, bias=False)

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        key_mask: torch.Tensor,
        past: LayerState | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z: (B, T, d); c: (B, T, latent); key_mask: (B, T_past+T) bool."""
        B, T, _ = z.shape
        q = self.q_proj(z).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, T, hd)
        k = self.k_up(c).view(B, T, self.n_kv, self.head_dim).transpose(1, 2)  # (B, Hkv, T, hd)
        v = self.v_up(c).view(B, T, self.n_kv, self.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if past is not None:
            k = torch.cat([past.k, k], dim=2)
            v = torch.cat([past.v, v], dim=2)
        S = k.shape[2]
        # Causal over absolute positions: query t sees keys up to S - T + t.
        causal = torch.ones(T, S, dtype=torch.bool, device=z.device).tril(S - T)
        mask = causal.unsqueeze(0) & key_mask[:, None, :]  # (B, T, S)
        # A fully masked row (a left-pad query) would softmax to NaN; let it see itself.
        own = torch.zeros(T, S, dtype=torch.bool, device=z.device)
        own[torch.arange(T), torch.arange(S - T, S)] = True
        mask = mask | (own.unsqueeze(0) & ~mask.any(-1, keepdim=True))
        rep = self.n_heads // self.n_kv
        kk = k.repeat_interleave(rep, dim=1)
        vv = v.repeat_interleave(rep, dim=1)
        if torch.is_autocast_enabled("cpu"):
            # A bf16 solve (the edit writer's) keeps attention in fp32: CPU's bf16 flash-attention backward
            # took 10x the fp32 one (SmolLM2, 324 rows of 8 queries x 17 keys: 2.5 s against 0.25 s).
            with torch.autocast("cpu", enabled=False):
                out = F.scaled_dot_product_attention(q.float(), kk.float(), vv.float(), attn_mask=mask.unsqueeze(1))
        else:
            out = F.scaled_dot_product_attention(q, kk, vv, attn_mask=mask.unsqueeze(1))  # (B, H, T, hd)
        out = out.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim)
        return self.o_proj(out), k, v


@dataclass
class KmmOptions:
    """Training-time controls of every KMM layer for one forward pass, passed
    as ``model(ids, kmm=KmmOptions(...))``; inference uses none of them.

    This is the whole interface between the model and its trainers: the
    training fast path (``retrieval``), value stand-ins and query capture go
    through it, never through attributes set on the modules.
    """

    field_scale: torch.Tensor | None = None  # (B, F): multiplies each field's output per sequence (field dropout)
    grad_fields: torch.Tensor | None = None  # (B, F) bool: fields that may receive gradient from that sequence
    token_mask: torch.Tensor | None = None  # (B, T) bool: the real tokens (an implementation may skip padding)
    values: torch.Tensor | None = None  # (F, N, d_v): read instead of the layer's values (bound slots: codebook rows)
    queries: dict[int, torch.Tensor] | None = None  # filled: KMM layer -> queries (M, H, d_k) of the real tokens
    # Another implementation of ``KnowledgeMemory.forward`` with the same semantics
    # (``retrieval(module, c, options) -> (B, T, d)``), e.g. ``lokiserve.train.fastkmm.fast_retrieval``.
    retrieval: Callable[["KnowledgeMemory", torch.Tensor, "KmmOptions"], torch.Tensor] | None = None


_NO_OPTIONS = KmmOptions()


class KnowledgeMemory(nn.Module):
    """KMM: per-field top-k retrieval from a parametric key-value memory.

    ``keys``/``values`` hold every field of this layer; ``enabled`` says which
    fields take part (a zeroed field contributes exactly 0).
    """

    def __init__(self, config: LoKiFormerConfig, layer_idx: int):
        super().__init__()
        g = config.memory_geometry
        self.layer_idx = layer_idx
        self.heads, self.key_dim, self.value_dim, self.topk = g.heads, g.key_dim, g.value_dim, g.topk
        self.query = nn.Linear(config.kv_latent_dim, g.heads * g.key_dim, bias=False)  # W_mq
        self.out = nn.Linear(g.heads * g.value_dim, config.hidden_size, bias=False)  # W_mo
        self.keys = nn.Parameter(torch.empty(g.num_fields, g.slots, g.key_dim))  # (F, N, d_k)
        self.values = nn.Parameter(torch.empty(g.num_fields, g.slots, g.value_dim))  # (F, N, d_v)
        self.register_buffer("enabled", torch.ones(g.num_fields, dtype=torch.bool))

    def forward(self, c: torch.Tensor, options: KmmOptions | None = None) -> torch.Tensor:
        """c: (B, T, latent) -> (B, T, d). ``options``: see ``KmmOptions``."""
        opts = options or _NO_OPTIONS
        if opts.retrieval is not None:
            return opts.retrieval(self, c, opts)
        B, T, _ = c.shape
        q = self.query(c).view(B * T, self.heads, self.key_dim)
        if opts.queries is not None:
            opts.queries[self.layer_idx] = q if opts.token_mask is None else q[opts.token_mask.reshape(-1)]
        values = self.values if opts.values is None else opts.values
        per_field = self._field_outputs(q, self.keys, values)  # (BT, H, F, d_v) fp32
        if opts.grad_fields is not None:
            frozen = self._field_outputs(q, self.keys.detach(), values.detach())
            allow = opts.grad_fields.repeat_interleave(T, dim=0).view(B * T, 1, -1, 1)
            per_field = torch.where(allow, per_field, frozen)
        mask = self.enabled.view(1, 1, -1, 1)
        per_field = torch.where(mask, per_field, torch.zeros((), device=c.device))
        if opts.field_scale is not None:
            per_field = per_field * opts.field_scale.repeat_interleave(T, dim=0).view(B * T, 1, -1, 1)
        r = per_field.sum(dim=2).to(c.dtype)  # (BT, H, d_v)
        return self.out(r.reshape(B, T, self.heads * self.value_dim))


    def _field_outputs(self, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Per-field retrieval, searching only enabled fields (a disabled
        field's output is 0 either way; an empty one would only cost a search
        of tied zeros)."""
        live = self.enabled.nonzero().flatten()
        if len(live) == keys.shape[0]:
            return kmm_field_outputs(q, keys, values, self.topk)
        out = q.new_zeros(q.shape[0], q.shape[1], keys.shape[0], values.shape[-1], dtype=torch.float32)
        if len(live):
            part = kmm_field_outputs(q, keys.index_select(0, live), values.index_select(0, live), self.topk)
            out = out.index_copy(2, live, part)
        return out


class SwiGLU(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden, bias=False)
        self.up_proj = nn.Linear(dim, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LoKiFormerBlock(nn.Module):
    def __init__(self, config: LoKiFormerConfig, layer_idx: int):
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.lfa = LocalFusion(config.hidden_size, config.lfa_kernel_size)
        self.attn = LatentAttention(config)
        self.kmm = KnowledgeMemory(config, layer_idx) if layer_idx in config.kmm_layers else None
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = SwiGLU(config.hidden_size, config.intermediate_size)

    def forward(self, h, cos, sin, key_mask, pad_mask, past, kmm: KmmOptions | None):
        u = self.input_layernorm(h)  # (B, T, d)
        # Left padding must look like "no input yet" to the conv: zero it.
        u_in = u * pad_mask.unsqueeze(-1).to(u.dtype)
        z, conv_state = self.lfa(u_in, None if past is None else past.conv)
        z = z + (u - u_in)  # padded positions keep u, so they stay finite and harmless
        c = self.attn.kv_down(z)  # (B, T, latent)
        a, k, v = self.attn(z, c, cos, sin, key_mask, past)
        h = h + a
        if self.kmm is not None:
            h = h + self.kmm(c, kmm)
        h = h + self.mlp(self.post_attention_layernorm(h))
        return h, LayerState(k=k, v=v, conv=conv_state)


# --------------------------------------------------------------------------- model


class LoKiFormerPreTrainedModel(PreTrainedModel):
    config_class = LoKiFormerConfig
    base_model_prefix = "model"
    _no_split_modules = ["LoKiFormerBlock"]
    _supports_sdpa = True

    def _init_weights(self, module: nn.Module) -> None:
        std = 0.02
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=std)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=std)
        elif isinstance(module, RMSNorm):
            nn.init.ones_(module.weight)
        elif isinstance(module, LocalFusion):
            nn.init.normal_(module.conv_weight, std=1.0 / math.sqrt(module.kernel_size))
            nn.init.constant_(module.gate, 0.1)
        elif isinstance(module, KnowledgeMemory):
            nn.init.normal_(module.keys, std=1.0)
            nn.init.normal_(module.values, std=std)
            module.enabled.fill_(True)


class LoKiFormerModel(LoKiFormerPreTrainedModel):
    def __init__(self, config: LoKiFormerConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(LoKiFormerBlock(config, i) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_init()

    def forward(self, input_ids, attention_mask=None, cache=None, kmm: KmmOptions | None = None,
                num_layers: int | None = None, start_layer: int = 0, hidden: torch.Tensor | None = None):
        """``num_layers``: run only the first blocks and return their raw output
        (no final norm): what reading the memory queries of early layers needs.
        ``start_layer`` with ``hidden`` (the raw output of the blocks below it
        for these tokens): run from there, what a value solve needs, whose
        lower blocks no value reaches."""
        B, T = input_ids.shape
        h = self.embed_tokens(input_ids) if hidden is None else hidden  # (B, T, d)
        if (hidden is None) != (start_layer == 0):
            raise ValueError("start_layer > 0 needs the hidden states entering it, and only then")
        if attention_mask is None:
            attention_mask = torch.ones(B, T, dtype=torch.bool, device=input_ids.device)
        attention_mask = attention_mask.bool()
        past_mask = cache.mask if cache is not None and cache.mask is not None else None
        if past_mask is not None and attention_mask.shape[1] > T:
            attention_mask = attention_mask[:, -T:]  # generate() passes the full-length mask
        key_mask = attention_mask if past_mask is None else torch.cat([past_mask, attention_mask], 1)
        # Positions count only real tokens, so left padding does not shift RoPE.
        positions = (key_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -T:]
        cos, sin = rope_cos_sin(positions, self.config.head_dim, self.config.rope_theta, h.dtype)
        new_states = [None if cache is None else cache.layers[i] for i in range(start_layer)]
        for i in range(start_layer, len(self.layers)):
            layer = self.layers[i]
            if num_layers is not None and i >= num_layers:
                return h
            past = None if cache is None else cache.layers[i]
            h, state = layer(h, cos, sin, key_mask, attention_mask, past, kmm)
            new_states.append(state)
        if cache is not None:
            cache.layers = new_states
            cache.mask = key_mask
        return self.norm(h)


class LoKiFormerForCausalLM(LoKiFormerPreTrainedModel, LoKiFormerGenerationMixin):
    """Causal LM head + the field API that hot swapping is built on."""

    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}

    def __init__(self, config: LoKiFormerConfig):
        super().__init__(config)
        self.model = LoKiFormerModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def set_input_embeddings(self, value):
        self.model.embed_tokens = value

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, value):
        self.lm_head = value

    # ------------------------------------------------------------------ forward

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        past_key_values: LoKiFormerCache | None = None,
        use_cache: bool | None = None,
        labels: torch.LongTensor | None = None,
        kmm_field_scale: torch.Tensor | None = None,
        kmm_grad_fields: torch.Tensor | None = None,
        kmm: KmmOptions | None = None,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        """``kmm``: training controls of the memory (``KmmOptions``);
        ``kmm_field_scale`` / ``kmm_grad_fields`` are shorthands for two of them."""
        cache = past_key_values if isinstance(past_key_values, LoKiFormerCache) else None
        if cache is None and use_cache:
            cache = LoKiFormerCache(self.config.num_hidden_layers)
        if kmm_field_scale is not None or kmm_grad_fields is not None:
            base = kmm or KmmOptions()
            kmm = dataclasses.replace(
                base,
                field_scale=base.field_scale if kmm_field_scale is None else kmm_field_scale,
                grad_fields=base.grad_fields if kmm_grad_fields is None else kmm_grad_fields,
            )
        hidden = self.model(input_ids, attention_mask, cache, kmm)
        logits = self.lm_head(hidden).float()
        loss = None
        if labels is not None:
            loss = F.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100
            )
        return CausalLMOutputWithPast(loss=loss, logits=logits, past_key_values=cache if use_cache else None)

    # ------------------------------------------------------------------ fields

    def memory_modules(self) -> dict[int, KnowledgeMemory]:
        return {i: layer.kmm for i, layer in enumerate(self.model.layers) if layer.kmm is not None}

    @property
    def field_memory(self) -> FieldMemory:
        """Every operation on the live fields (``lokiserve.memory.FieldMemory``)."""
        return FieldMemory(self.memory_modules(), self.config.kmm_field_names)

    @property
    def field_names(self) -> list[str]:
        return list(self.config.kmm_field_names)

    def field_index(self, field_id: int | str) -> int:
        return self.field_memory.index(field_id)

    def backbone_tensors(self) -> Iterable[tuple[str, torch.Tensor]]:
        """Every weight except the field memory itself (what a field depends on)."""
        for name, tensor in self.state_dict().items():
            if is_backbone_tensor(name, self.config.tie_word_embeddings):
                yield name, tensor

    def backbone_hash(self) -> str:
        return backbone_hash(self.backbone_tensors(), self.config.memory_geometry)

    def field_state(self, field_id: int | str) -> str:
        return self.field_memory.state(self.field_index(field_id))

    def export_field(self, field_id: int | str, **metadata: str) -> Field:
        """The live contents of one field, as a Field bound to this backbone."""
        return self.field_memory.export(self.field_index(field_id), self.backbone_hash(), **metadata)

    def apply_field(self, field_id: int | str, field: Field, *, backbone: str | None = None) -> None:
        """Validate ``field`` against this model, then replace slice ``field_id``
        in every KMM layer. On any error nothing changes. An all-zero field is
        the empty field: it is stored and marked zeroed."""
        f = self.field_index(field_id)
        field.check_compatible(self.config.memory_geometry, backbone or self.backbone_hash())
        self.field_memory.write(f, field)

    def zero_field(self, field_id: int | str) -> None:
        """Remove a field: its memory is cleared and it is excluded from retrieval."""
        self.field_memory.zero(self.field_index(field_id))


__all__ = [
    "LoKiFormerConfig",
    "KmmOptions",
    "LoKiFormerForCausalLM",
    "LoKiFormerModel",
    "LoKiFormerCache",
    "is_memory_tensor",
    "is_backbone_tensor",
]
