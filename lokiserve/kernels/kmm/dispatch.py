"""Pick the KMM implementation by device, so callers never branch on it.

Triton is imported lazily: CPU-only installs (and the reference model) must
import this package without triton present.
"""

from __future__ import annotations

import importlib.util

import torch

from lokiserve.kernels.kmm.cpu import kmm_decode_cpu
from lokiserve.kernels.kmm.naive import kmm_decode_reference


def triton_available() -> bool:
    return importlib.util.find_spec("triton") is not None


def kmm_decode_triton(q, keys, values, enabled, topk, **kwargs):
    """Lazy entry to ``triton_kmm.kmm_decode_triton`` (same contract and kwargs).

    q: [B, H, d_k]; keys: [F, N, d_k]; values: [F, N, d_v]; enabled: [F] bool
    returns out: [B, H, d_v] in q's dtype.
    """
    if not triton_available():
        raise ImportError(
            "kmm_decode_triton needs the `triton` package; install it or use "
            "kmm_decode / kmm_decode_reference on CPU."
        )
    from lokiserve.kernels.kmm.triton_kmm import kmm_decode_triton as impl

    return impl(q, keys, values, enabled, topk, **kwargs)


def kmm_decode(
    q: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    enabled: torch.Tensor,
    topk: int,
) -> torch.Tensor:
    """KMM retrieval: the Triton kernel on CUDA tensors, the CPU-tuned PyTorch
    path (``kmm.cpu``, exact against the reference) elsewhere.

    q: [B, H, d_k]; keys: [F, N, d_k]; values: [F, N, d_v]; enabled: [F] bool
    returns out: [B, H, d_v] in q's dtype.
    """
    if q.is_cuda and triton_available():
        return kmm_decode_triton(q, keys, values, enabled, topk)
    return kmm_decode_cpu(q, keys, values, enabled, topk)
