"""Start real server processes on loopback ports and wait until they answer
(the helpers live in ``lokiserve.testing``, shared with the benchmarks)."""

from __future__ import annotations

import sys
from pathlib import Path

from lokiserve.testing import free_port, running, stop, wait_http  # noqa: F401  (tests import them from here)

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
