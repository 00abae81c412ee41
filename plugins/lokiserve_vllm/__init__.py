"""vLLM general plugin for LoKiFormer.

vLLM calls ``register()`` once in *every* process it starts (API server,
engine core, each worker, the registry's inspection subprocess), so it must be
idempotent and cheap: it only registers names. The model module is given to
vLLM as a lazy ``"module:Class"`` string and imported where it is used.
"""

from __future__ import annotations

ARCHITECTURE = "LoKiFormerForCausalLM"
MODEL_QUALNAME = "lokiserve_vllm.model:LoKiFormerForCausalLM"
# The worker extension's name lives in lokiserve.control (WORKER_EXTENSION); importing
# this package stays free of torch and lokiserve until register() runs.

_registered = False


def _grant_amx_permission() -> None:
    """bf16 on Intel CPUs: vLLM's AMX attention kernel runs before anything
    has asked Linux for AMX tile permission (oneDNN asks lazily on its first
    bf16 op), which kills the worker with "Illegal instruction". Asking early
    in every process fixes it; a no-op elsewhere."""
    import torch

    init_amx = getattr(torch.cpu, "_init_amx", None)
    if init_amx is not None:
        try:
            init_amx()
        except Exception:  # pragma: no cover - non-Intel or old kernel
            pass


def register() -> None:
    global _registered
    if _registered:
        return
    _grant_amx_permission()
    from transformers import AutoConfig
    from vllm import ModelRegistry

    from lokiserve.config import LoKiFormerConfig

    AutoConfig.register("lokiformer", LoKiFormerConfig, exist_ok=True)
    if ARCHITECTURE not in ModelRegistry.get_supported_archs():
        ModelRegistry.register_model(ARCHITECTURE, MODEL_QUALNAME)
    _registered = True
