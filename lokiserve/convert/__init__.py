"""Convert a Llama-family checkpoint into a LoKiFormer with an attached, empty
memory, exactly: same logits as the source, memory ready for fields.

Modules, one concern each: ``fetch`` (known sources from pip, cached),
``source`` (read and refuse sources), ``layout`` (memory geometry defaults),
``calibration`` (generated text), ``readpath`` (W_mq/W_mo from activations),
``weights`` (the exact weight mapping), ``output`` (atomic folder writes),
``parity`` (logit checks), ``readme``, ``pipeline`` (``convert``), ``cli``.

Exports resolve lazily, so building the ``lokiserve`` argument parser does
not import torch or transformers.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ConvertError": "errors",
    "KNOWN_SOURCES": "fetch",
    "default_cache_dir": "fetch",
    "fetch_known": "fetch",
    "fetch_smollm2": "fetch",
    "MemoryLayout": "layout",
    "default_kmm_layers": "layout",
    "convert": "pipeline",
    "Source": "source",
    "export_source_llama": "source",
    "load_source": "source",
}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lokiserve.convert' has no attribute {name!r}")
    return getattr(importlib.import_module(f"lokiserve.convert.{_EXPORTS[name]}"), name)


__all__ = sorted(_EXPORTS)
