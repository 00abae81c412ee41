"""Where lokiserve looks for things by default: one answer for every command."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO_ROOT / "bench" / "results"


def default_model_dir() -> Path:
    """The shipped demo: beside the package in a source checkout, else under
    the working directory (a non-editable install has no repository)."""
    for root in (REPO_ROOT, Path.cwd()):
        if (root / "memories" / "demo" / "config.json").is_file():
            return root / "memories" / "demo"
    return REPO_ROOT / "memories" / "demo"


def cache_dir() -> Path:
    """lokiserve's cache (compiled CPU kernels, fetched model packages):
    ``$LOKISERVE_CACHE_DIR``, else ``~/.cache/lokiserve``."""
    return Path(os.environ.get("LOKISERVE_CACHE_DIR") or Path.home() / ".cache" / "lokiserve")


__all__ = ["REPO_ROOT", "BENCH_DIR", "default_model_dir", "cache_dir"]
