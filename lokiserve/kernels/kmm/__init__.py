"""KMM retrieval kernels: reference, CPU-tuned PyTorch, Triton, and the device dispatcher."""

from lokiserve.kernels.kmm.cpu import kmm_decode_cpu

from lokiserve.kernels.kmm.dispatch import kmm_decode, kmm_decode_triton
from lokiserve.kernels.kmm.naive import kmm_decode_reference

__all__ = ["kmm_decode", "kmm_decode_cpu", "kmm_decode_reference", "kmm_decode_triton"]
