"""Custom kernels. Importing this never imports triton (see kmm.dispatch)."""

from lokiserve.kernels.kmm import kmm_decode, kmm_decode_reference, kmm_decode_triton

__all__ = ["kmm_decode", "kmm_decode_reference", "kmm_decode_triton"]
