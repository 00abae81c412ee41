"""LoKiFormer for vLLM, in vLLM's idiom (compare ``models/llama.py``).

The math is ``lokiserve.model`` (the reference, which is the oracle); this
file maps it onto vLLM's machinery:

* attention: vLLM ``Attention`` over the paged KV cache, heads split over
  tensor-parallel ranks (column-parallel q / kv-up, row-parallel o);
* LFA: ``LocalFusionConv``, a hybrid-model state layer (``lfa.py``), or,
  when the config says every gate is 0 (``lfa_enabled=False``, a converted
  Llama), ``ZeroGateLFA``: the identity, and vLLM serves the model as plain
  attention (no conv state; see ``LoKiFormerConfig.layer_types``);
* KMM: memory in buffers, retrieval through ``lokiserve.kernels.kmm_decode``
  (Triton on CUDA, PyTorch reference on CPU), split over ranks as
  ``sharding.py`` explains. Attention and memory partial sums share one
  all-reduce per block.

Checkpoint names are the reference model's ``state_dict`` names; loading
also computes the backbone hash that field files must match.
"""


from collections.abc import Iterable

import torch
from torch import nn

from vllm.compilation.decorators import support_torch_compile
from vllm.config import CacheConfig, VllmConfig
from vllm.distributed import (
    get_tensor_model_parallel_rank,
    get_tensor_model_parallel_world_size,
    tensor_model_parallel_all_reduce,
)
from vllm.model_executor.layers.activation import SiluAndMul
from vllm.model_executor.layers.attention import Attention
from vllm.model_executor.layers.layernorm import RMSNorm
from vllm.model_executor.layers.linear import (
    ColumnParallelLinear,
    MergedColumnParallelLinear,
    ReplicatedLinear,
    RowParallelLinear,
)
from vllm.model_executor.layers.logits_processor import LogitsProcessor
from vllm.model_executor.layers.mamba.mamba_utils import (
    MambaStateCopyFuncCalculator,
    MambaStateDtypeCalculator,
)
from vllm.model_executor.layers.rotary_embedding import get_rope
from vllm.model_executor.layers.vocab_parallel_embedding import (
    ParallelLMHead,
    VocabParallelEmbedding,
)
from vllm.model_executor.model_loader.weight_utils import default_weight_loader
from vllm.model_executor.models.interfaces import HasInnerState, IsHybrid
from vllm.model_executor.models.utils import extract_layer_index, make_layers, maybe_prefix
from vllm.sequence import IntermediateTensors
from vllm.utils.torch_utils import direct_register_custom_op

from lokiserve.config import LoKiFormerConfig
from lokiserve.kernels import kmm_decode
from lokiserve.memory import BackboneHasher, Field, FieldMemory, MemoryGeometry, is_backbone_tensor

from .lfa import LocalFusionConv, ZeroGateLFA, lfa_state_shape
from .sharding import permute_memory_out_proj, value_shard


def check_parallel_layout(config: LoKiFormerConfig, tp: int, pp: int) -> None:
    """Refuse a parallel layout the model cannot run, by name: tensor
    parallelism must divide every split dimension; pipeline parallelism is not
    supported (each block's memory and attention share one all-reduce, and
    the LFA state lives per layer), so pp > 1 is refused at load, clearly."""
    if pp > 1:
        raise ValueError(f"LoKiFormer does not support pipeline parallelism (pipeline_parallel_size={pp}); "
                         "use --tensor-parallel-size and/or --data-parallel-size")
    for name, value in (
        ("num_attention_heads", config.num_attention_heads),
        ("num_key_value_heads", config.num_key_value_heads),
        ("kmm_value_dim", config.kmm_value_dim),
        ("intermediate_size", config.intermediate_size),
    ):
        if value % tp:
            raise ValueError(f"LoKiFormer: {name}={value} is not divisible by tensor_parallel_size={tp}")


class LatentAttention(nn.Module):
    """GQA attention whose keys/values come from the latent c = W_dkv z."""

    def __init__(self, config: LoKiFormerConfig, cache_config: CacheConfig | None, prefix: str = ""):
        super().__init__()
        tp = get_tensor_model_parallel_world_size()
        self.head_dim = config.head_dim
        self.num_heads = config.num_attention_heads // tp
        self.num_kv_heads = config.num_key_value_heads // tp
        self.q_proj = ColumnParallelLinear(
            config.hidden_size, config.num_attention_heads * self.head_dim, bias=False, prefix=f"{prefix}.q_proj"
        )
        # The latent is small and read by both attention and memory: replicate it.
        self.kv_down = ReplicatedLinear(config.hidden_size, config.kv_latent_dim, bias=False, prefix=f"{prefix}.kv_down")
        self.kv_up = MergedColumnParallelLinear(
            config.kv_latent_dim,
            [config.num_key_value_heads * self.head_dim] * 2,
            bias=False,
            prefix=f"{prefix}.kv_up",
        )
        self.o_proj = RowParallelLinear(
            config.num_attention_heads * self.head_dim,
            config.hidden_size,
            bias=False,
            reduce_results=False,  # reduced together with the memory output
            prefix=f"{prefix}.o_proj",
        )
        self.rotary_emb = get_rope(
            self.head_dim,
            max_position=config.max_position_embeddings,
            is_neox_style=True,
            rope_parameters={"rope_type": "default", "rope_theta": config.rope_theta},
        )
        self.attn = Attention(
            self.num_heads,
            self.head_dim,
            self.head_dim**-0.5,
            num_kv_heads=self.num_kv_heads,
            cache_config=cache_config,
            prefix=f"{prefix}.attn",
        )
        # (k offset, v offset) in the latent when kv_up is an exact column selection
        # (a converted Llama: W_uk = [I 0], W_uv = [0 I]); set by find_latent_split().
        self.latent_split: tuple[int, int] | None = None

    def find_latent_split(self, kv_heads: int) -> None:
        """If this rank's kv_up weight only selects latent columns (identity
        blocks), k and v are views of the latent: the matmul is skipped, with
        bit-identical results (x*1 + sum of y*0 is x)."""
        w = self.kv_up.weight
        width, full = self.num_kv_heads * self.head_dim, kv_heads * self.head_dim
        if w.shape[1] != 2 * full or w.is_meta:
            return
        k0 = get_tensor_model_parallel_rank() * width
        eye = torch.eye(2 * full, dtype=w.dtype, device=w.device)
        if torch.equal(w, torch.cat([eye[k0 : k0 + width], eye[full + k0 : full + k0 + width]])):
            self.latent_split = (k0, full + k0)

    def forward(self, positions: torch.Tensor, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Rotary embedding works in place: with ``latent_split`` it changes c's
        key columns, so the caller reads c (the memory query) first."""
        q, _ = self.q_proj(z)  # (T, H/tp * hd)
        if self.latent_split is not None:
            width = self.num_kv_heads * self.head_dim
            k, v = c.narrow(-1, self.latent_split[0], width), c.narrow(-1, self.latent_split[1], width)
        else:
            kv, _ = self.kv_up(c)
            k, v = kv.chunk(2, dim=-1)  # (T, Hkv/tp * hd) each
        q, k = self.rotary_emb(positions, q, k)
        out, _ = self.o_proj(self.attn(q, k, v))  # partial sum over ranks
        return out


class KnowledgeMemory(nn.Module):
    """KMM with its memory in buffers: keys replicated, values split on d_v."""

    def __init__(self, config: LoKiFormerConfig, prefix: str = ""):
        super().__init__()
        tp = get_tensor_model_parallel_world_size()
        g = config.memory_geometry
        self.heads, self.key_dim, self.topk = g.heads, g.key_dim, g.topk
        self.local_value_dim = g.value_dim // tp
        self.query = ReplicatedLinear(config.kv_latent_dim, g.heads * g.key_dim, bias=False, prefix=f"{prefix}.query")
        self.out = RowParallelLinear(
            g.heads * g.value_dim, config.hidden_size, bias=False, reduce_results=False, prefix=f"{prefix}.out"
        )
        # Buffers, not parameters: hot swaps copy into them in place, so
        # compiled graphs and CUDA graphs keep seeing the same storage.
        self.register_buffer("keys", torch.zeros(g.num_fields, g.slots, g.key_dim))  # (F, N, d_k)
        self.register_buffer("values", torch.zeros(g.num_fields, g.slots, self.local_value_dim))  # (F, N, d_v/tp)
        self.register_buffer("enabled", torch.ones(g.num_fields, dtype=torch.bool))  # (F,)

    def is_empty_now(self) -> bool:
        """No field enabled, so m = 0 exactly: eager CPU runs skip the whole
        module (a converted model's empty memory then costs nothing). Read per
        step from the buffer, never cached: a swap takes effect at once. Not
        while compiling (the graph keeps the full path) nor on GPUs (a sync)."""
        return (self.enabled.device.type == "cpu" and not torch.compiler.is_compiling()
                and not bool(self.enabled.any()))

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        q, _ = self.query(c)
        q = q.view(-1, self.heads, self.key_dim)  # (T, H, d_k)
        r = torch.ops.vllm.lokiformer_kmm(q, self.keys, self.values, self.enabled, self.topk)  # (T, H, d_v/tp)
        out, _ = self.out(r.reshape(r.shape[0], -1))  # partial sum over ranks
        return out


def lokiformer_kmm(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, enabled: torch.Tensor, topk: int) -> torch.Tensor:
    """KMM retrieval as one opaque op: torch.compile must not trace into it
    (top-k tie handling and field masks branch on data). On CPU a memory with
    no enabled field returns zeros at once (a converted model's empty memory):
    the kernel would otherwise score every slot of every field at decode."""
    if enabled.device.type == "cpu" and not bool(enabled.any()):
        return q.new_zeros(q.shape[0], q.shape[1], values.shape[-1])
    return kmm_decode(q, keys, values, enabled, topk)


def _lokiformer_kmm_fake(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, enabled: torch.Tensor, topk: int) -> torch.Tensor:
    return q.new_empty(q.shape[0], q.shape[1], values.shape[-1])


direct_register_custom_op(op_name="lokiformer_kmm", op_func=lokiformer_kmm, fake_impl=_lokiformer_kmm_fake)


class LoKiFormerMLP(nn.Module):
    def __init__(self, config: LoKiFormerConfig, prefix: str = ""):
        super().__init__()
        self.gate_up_proj = MergedColumnParallelLinear(
            config.hidden_size, [config.intermediate_size] * 2, bias=False, prefix=f"{prefix}.gate_up_proj"
        )
        self.down_proj = RowParallelLinear(config.intermediate_size, config.hidden_size, bias=False, prefix=f"{prefix}.down_proj")
        self.act_fn = SiluAndMul()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, _ = self.gate_up_proj(x)
        x, _ = self.down_proj(self.act_fn(x))
        return x


class LoKiFormerDecoderLayer(nn.Module):
    def __init__(self, vllm_config: VllmConfig, prefix: str = ""):
        super().__init__()
        config: LoKiFormerConfig = vllm_config.model_config.hf_config
        layer_idx = extract_layer_index(prefix)
        self.tp = get_tensor_model_parallel_world_size()
        self.input_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        if config.lfa_enabled:
            self.lfa = LocalFusionConv(
                config.hidden_size,
                config.lfa_kernel_size,
                model_config=vllm_config.model_config,
                cache_config=vllm_config.cache_config,
                prefix=f"{prefix}.lfa",
            )
        else:
            self.lfa = ZeroGateLFA(config.hidden_size, config.lfa_kernel_size, prefix=f"{prefix}.lfa")
        self.attn = LatentAttention(config, vllm_config.cache_config, prefix=f"{prefix}.attn")
        self.kmm = KnowledgeMemory(config, prefix=f"{prefix}.kmm") if layer_idx in config.kmm_layers else None
        self.post_attention_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.mlp = LoKiFormerMLP(config, prefix=f"{prefix}.mlp")

    def forward(self, positions: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        u = self.input_layernorm(h)  # (T, d)
        z = self.lfa(u)
        c, _ = self.attn.kv_down(z)  # (T, latent)
        # before attention, which may rope c in place; an empty memory adds exactly 0
        m = self.kmm(c) if self.kmm is not None and not self.kmm.is_empty_now() else None
        mixed = self.attn(positions, z, c)
        if m is not None:
            mixed = mixed + m
        if self.tp > 1:
            mixed = tensor_model_parallel_all_reduce(mixed)
        h = h + mixed
        return h + self.mlp(self.post_attention_layernorm(h))


@support_torch_compile
class LoKiFormerModel(nn.Module):
    def __init__(self, *, vllm_config: VllmConfig, prefix: str = ""):
        super().__init__()
        config = vllm_config.model_config.hf_config
        self.config = config
        self.embed_tokens = VocabParallelEmbedding(config.vocab_size, config.hidden_size, prefix=f"{prefix}.embed_tokens")
        self.start_layer, self.end_layer, self.layers = make_layers(
            config.num_hidden_layers,
            lambda prefix: LoKiFormerDecoderLayer(vllm_config, prefix=prefix),
            prefix=f"{prefix}.layers",
        )
        self.norm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def embed_input_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.embed_tokens(input_ids)

    def forward(
        self,
        input_ids: torch.Tensor | None,
        positions: torch.Tensor,
        intermediate_tensors: IntermediateTensors | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        h = inputs_embeds if inputs_embeds is not None else self.embed_input_ids(input_ids)
        for layer in self.layers[self.start_layer : self.end_layer]:
            h = layer(positions, h)
        return self.norm(h)


class LoKiFormerForCausalLM(nn.Module, HasInnerState, IsHybrid):
    packed_modules_mapping = {"kv_up": ["k_up", "v_up"], "gate_up_proj": ["gate_proj", "up_proj"]}
    # (vLLM param, checkpoint name, shard id)
    stacked_params_mapping = [
        (".kv_up", ".k_up", 0),
        (".kv_up", ".v_up", 1),
        (".gate_up_proj", ".gate_proj", 0),
        (".gate_up_proj", ".up_proj", 1),
    ]

    # -- hybrid-state contract (LFA conv state) ----------------------------

    @classmethod
    def get_mamba_state_shape_from_config(cls, vllm_config: VllmConfig):
        cfg = vllm_config.model_config.hf_config
        return lfa_state_shape(cfg.hidden_size, cfg.lfa_kernel_size, vllm_config.num_speculative_tokens)

    @classmethod
    def get_mamba_state_dtype_from_config(cls, vllm_config: VllmConfig):
        return MambaStateDtypeCalculator.short_conv_state_dtype(
            vllm_config.model_config.dtype, vllm_config.cache_config.mamba_cache_dtype
        )

    @classmethod
    def get_mamba_state_copy_func(cls):
        return MambaStateCopyFuncCalculator.short_conv_state_copy_func()

    def __init__(self, *, vllm_config: VllmConfig, prefix: str = ""):
        super().__init__()
        config: LoKiFormerConfig = vllm_config.model_config.hf_config
        check_parallel_layout(config, get_tensor_model_parallel_world_size(),
                              vllm_config.parallel_config.pipeline_parallel_size)
        self.config = config
        self.model = LoKiFormerModel(vllm_config=vllm_config, prefix=maybe_prefix(prefix, "model"))
        self.lm_head = ParallelLMHead(config.vocab_size, config.hidden_size, prefix=maybe_prefix(prefix, "lm_head"))
        if config.tie_word_embeddings:
            self.lm_head = self.lm_head.tie_weights(self.model.embed_tokens)
        self.logits_processor = LogitsProcessor(config.vocab_size)
        self.backbone: str | None = None  # set by load_weights
        self.field_sources: dict[int, str] = {}  # field -> where its contents came from

    def embed_input_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model.embed_input_ids(input_ids)

    def forward(
        self,
        input_ids: torch.Tensor | None,
        positions: torch.Tensor,
        intermediate_tensors: IntermediateTensors | None = None,
        inputs_embeds: torch.Tensor | None = None,
        **kwargs,
    ) -> torch.Tensor:
        """``intermediate_tensors`` is vLLM's pipeline-parallel input; always None
        here (pp > 1 is refused at load)."""
        return self.model(input_ids, positions, intermediate_tensors, inputs_embeds)

    def compute_logits(self, hidden_states: torch.Tensor) -> torch.Tensor | None:
        return self.logits_processor(self.lm_head, hidden_states)

    # -- weights -------------------------------------------------------------

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        """One loader path for backbone and memory; hashes the backbone as it streams."""
        params = dict(self.named_parameters())
        buffers = dict(self.named_buffers())
        hasher = BackboneHasher()
        loaded: set[str] = set()
        for name, tensor in weights:
            if is_backbone_tensor(name, self.config.tie_word_embeddings):
                hasher.add(name, tensor)
            elif name == "lm_head.weight":
                continue  # tied to the embedding
            if name in buffers:  # field memory: keys, values, enabled
                self.field_memory.load(int(name.split(".")[2]), name.rsplit(".", 1)[-1], tensor)
                loaded.add(name)
                continue
            if name.endswith(".kmm.out.weight"):
                tensor = permute_memory_out_proj(
                    tensor, self.config.kmm_heads, self.config.kmm_value_dim, get_tensor_model_parallel_world_size()
                )
            for param_name, ckpt_name, shard_id in self.stacked_params_mapping:
                if ckpt_name in name:
                    name = name.replace(ckpt_name, param_name)
                    param = params[name]
                    param.weight_loader(param, tensor, shard_id)
                    break
            else:
                if name not in params:
                    raise KeyError(f"checkpoint tensor {name!r} has no place in LoKiFormer; have {sorted(params)[:12]}")
                param = params[name]
                getattr(param, "weight_loader", default_weight_loader)(param, tensor)
            loaded.add(name)
        for layer in self.model.layers:
            if isinstance(layer.lfa, ZeroGateLFA):
                layer.lfa.check_zero_gate()
            layer.attn.find_latent_split(self.config.num_key_value_heads)
        self.backbone = hasher.hexdigest(self.config.memory_geometry)
        self.field_sources = {f: "checkpoint" for f in range(self.config.kmm_num_fields)}
        return loaded

    def memory_modules(self) -> dict[int, KnowledgeMemory]:
        return {i: layer.kmm for i, layer in enumerate(self.model.layers) if getattr(layer, "kmm", None) is not None}

    @property
    def field_memory(self) -> FieldMemory:
        """This rank's fields: keys in full, values as this rank's ``d_v`` slice
        (``sharding.value_shard``), so the checkpoint loader and hot swaps
        place a field identically."""
        rank, tp = get_tensor_model_parallel_rank(), get_tensor_model_parallel_world_size()
        return FieldMemory(self.memory_modules(), self.config.kmm_field_names,
                           value_shard=lambda v: value_shard(v, rank, tp))

    @property
    def memory_geometry(self) -> MemoryGeometry:
        return self.config.memory_geometry

    def validate_field(self, field: Field) -> None:
        """The same check the reference model applies: geometry + backbone."""
        if self.backbone is None:
            raise RuntimeError("weights not loaded yet")
        field.check_compatible(self.memory_geometry, self.backbone)
