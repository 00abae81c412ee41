"""Local Fusion Attention as a vLLM hybrid-model state layer.

``z = u + g * dwconv_causal(u)`` needs, per sequence, the last ``K-1`` inputs.
vLLM already manages exactly that kind of state for LFM2's short convolution
(paged like KV, with prefix caching in "align" mode), so this layer declares
itself a SHORT_CONV mamba layer and reuses vLLM's causal-conv kernels. The
conv runs over the full hidden size on every rank (the input ``u`` is
replicated and ``z`` feeds column-parallel projections), so its state is
replicated rather than split: ``K-1`` x hidden values per sequence and layer.

A model whose config says ``lfa_enabled=False`` (every gate exactly 0, as
``lokiserve convert`` writes) gets ``ZeroGateLFA`` instead: z = u, no state,
and the config's ``layer_types`` make vLLM treat the model as non-hybrid.
"""


import torch
import torch.nn as nn

from vllm.config import CacheConfig, ModelConfig, get_current_vllm_config
from vllm.forward_context import ForwardContext, get_forward_context
from vllm.model_executor.layers.mamba.abstract import MambaBase
from vllm.model_executor.layers.mamba.mamba_utils import (
    MambaStateDtypeCalculator,
    MambaStateShapeCalculator,
    is_conv_state_dim_first,
)
from vllm.platforms import current_platform
from vllm.utils.torch_utils import direct_register_custom_op
from vllm.v1.attention.backends.registry import MambaAttentionBackendEnum


def lfa_state_shape(hidden_size: int, kernel_size: int, num_spec: int = 0) -> tuple[tuple[int, int]]:
    """Replicated conv state: tp_world_size=1 on purpose (see module docstring)."""
    return MambaStateShapeCalculator.short_conv_state_shape(
        tp_world_size=1, intermediate_size=hidden_size, conv_kernel=kernel_size, num_spec=num_spec
    )


class ZeroGateLFA(nn.Module):
    """LFA whose gates are all 0: the identity, so it needs no conv state and
    no custom op. Holds the weights so the checkpoint loads (and hashes)
    unchanged; ``check_zero_gate`` refuses weights that contradict the config."""

    def __init__(self, hidden_size: int, kernel_size: int, prefix: str = ""):
        super().__init__()
        self.conv_weight = nn.Parameter(torch.empty(hidden_size, kernel_size), requires_grad=False)
        self.gate = nn.Parameter(torch.empty(hidden_size), requires_grad=False)
        self.prefix = prefix

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return u

    def check_zero_gate(self) -> None:
        if bool(self.gate.ne(0).any()):
            raise ValueError(f"{self.prefix}.gate is not all zero but the config says lfa_enabled=false; "
                             "set lfa_enabled to true (the conv then runs, with its state)")


class LocalFusionConv(MambaBase, nn.Module):
    """Causal depthwise conv with a per-channel gate, state held by vLLM."""

    def __init__(
        self,
        hidden_size: int,
        kernel_size: int,
        model_config: ModelConfig | None = None,
        cache_config: CacheConfig | None = None,
        prefix: str = "",
    ):
        super().__init__()
        self.hidden_size = hidden_size
        self.kernel_size = kernel_size
        self.conv_weight = nn.Parameter(torch.empty(hidden_size, kernel_size), requires_grad=False)
        self.gate = nn.Parameter(torch.empty(hidden_size), requires_grad=False)
        vllm_config = get_current_vllm_config()
        self.num_spec = vllm_config.num_speculative_tokens
        context = vllm_config.compilation_config.static_forward_context
        if prefix in context:
            raise ValueError(f"Duplicate layer name: {prefix}")
        context[prefix] = self
        self.kv_cache = (torch.tensor([]),)
        self.model_config = model_config
        self.cache_config = cache_config
        self.prefix = prefix

    # -- vLLM state-layer contract ---------------------------------------

    def get_state_shape(self):
        return lfa_state_shape(self.hidden_size, self.kernel_size, self.num_spec)

    def get_state_dtype(self) -> tuple[torch.dtype, ...]:
        assert self.model_config is not None and self.cache_config is not None
        return MambaStateDtypeCalculator.short_conv_state_dtype(
            self.model_config.dtype, self.cache_config.mamba_cache_dtype
        )

    @property
    def mamba_type(self) -> MambaAttentionBackendEnum:
        return MambaAttentionBackendEnum.SHORT_CONV

    # -- forward ------------------------------------------------------------

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """u: (T, d) normalised block input -> z: (T, d)."""
        z = torch.empty_like(u)
        torch.ops.vllm.lokiformer_lfa(u, z, self.prefix)
        return z

    def _forward(self, u: torch.Tensor, z: torch.Tensor) -> None:
        metadata = get_forward_context().attn_metadata
        md = metadata.get(self.prefix) if isinstance(metadata, dict) else None
        if md is None:
            # Profile / dummy run: no state exists yet; the value is unused.
            z.copy_(u)
            return
        conv_state = self.kv_cache[0] if is_conv_state_dim_first() else self.kv_cache[0].transpose(-1, -2)
        weight = self.conv_weight  # (d, K)
        n_dec, n_pre = md.num_decode_tokens, md.num_prefill_tokens
        n = n_dec + n_pre
        u_d, u_p = torch.split(u[:n], [n_dec, n_pre], dim=0)  # vLLM orders decodes first
        outs = []
        if n_dec > 0:
            outs.append(self._decode(u_d, conv_state, weight, md))
        if md.num_prefills > 0:
            outs.append(self._prefill(u_p, conv_state, weight, md))
        y = torch.cat(outs, dim=0) if len(outs) > 1 else outs[0]
        z[:n] = u[:n] + self.gate * y.to(u.dtype)
        if z.shape[0] > n:  # padded tokens (CUDA graphs): finite filler
            z[n:] = u[n:]

    def _prefill(self, u_p, conv_state, weight, md) -> torch.Tensor:
        if current_platform.is_cpu():
            from vllm.model_executor.layers.mamba.ops.cpu.causal_conv1d import causal_conv1d_fn_cpu

            y = causal_conv1d_fn_cpu(
                u_p.transpose(0, 1),
                weight,
                None,
                conv_state,
                md.query_start_loc_p,
                md.state_indices_tensor_p.flatten(),
                md.has_initial_states_p,
                activation=None,
            )
        else:
            from vllm.model_executor.layers.mamba.ops.causal_conv1d import causal_conv1d_fn

            y = causal_conv1d_fn(
                u_p.transpose(0, 1),
                weight,
                None,
                activation=None,
                conv_states=conv_state,
                has_initial_state=md.has_initial_states_p,
                cache_indices=md.state_indices_tensor_p,
                metadata=md,
                query_start_loc=md.query_start_loc_p,
            )
        return y.transpose(0, 1)[: u_p.shape[0]]

    def _decode(self, u_d, conv_state, weight, md) -> torch.Tensor:
        if current_platform.is_cpu():
            from vllm.model_executor.layers.mamba.ops.cpu.causal_conv1d import (
                causal_conv1d_update_cpu,
                causal_conv1d_update_torch,
            )
            from vllm.platforms import CpuArchEnum

            indices = md.state_indices_tensor_d.flatten()
            if current_platform.get_cpu_architecture() == CpuArchEnum.ARM:
                view = conv_state[indices].contiguous()
                y = causal_conv1d_update_torch(u_d.unsqueeze(-1), view, weight, None, activation=None)
                conv_state[indices] = view
                return y.squeeze(-1)
            return causal_conv1d_update_cpu(
                u_d.contiguous(), conv_state, weight, None, activation=None, conv_state_indices=indices
            )
        from vllm.model_executor.layers.mamba.ops.causal_conv1d import causal_conv1d_update

        return causal_conv1d_update(
            u_d.contiguous(),
            conv_state,
            weight,
            None,
            activation=None,
            conv_state_indices=md.state_indices_tensor_d,
        )


def lokiformer_lfa(u: torch.Tensor, z: torch.Tensor, layer_name: str) -> None:
    """Opaque to torch.compile: the state update depends on per-step metadata."""
    context: ForwardContext = get_forward_context()
    context.no_compile_layers[layer_name]._forward(u, z)


def _lokiformer_lfa_fake(u: torch.Tensor, z: torch.Tensor, layer_name: str) -> None:
    return None


direct_register_custom_op(
    op_name="lokiformer_lfa",
    op_func=lokiformer_lfa,
    mutates_args=["z"],
    fake_impl=_lokiformer_lfa_fake,
)
