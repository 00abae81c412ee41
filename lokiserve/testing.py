"""Test and benchmark helpers that ship with the package (like ``torch.testing``):
tiny random LoKiFormers, a throwaway checkpoint with a real tokenizer, and
real server processes on loopback ports. Tests, benchmarks and scripts all
use these, so none of them imports another's private helpers."""

from __future__ import annotations

import gc
import os
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import torch

from lokiserve.model import LoKiFormerConfig, LoKiFormerForCausalLM

REPO = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- models


def tiny_config(**overrides) -> LoKiFormerConfig:
    """KMM on every layer and LFA kernel 4: the cases issue 2 asks to cover."""
    base = dict(
        vocab_size=97,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        intermediate_size=128,
        kv_latent_dim=32,
        lfa_kernel_size=4,
        kmm_layers=[0, 1],
        kmm_num_fields=3,
        kmm_slots_per_field=16,
        kmm_key_dim=16,
        kmm_value_dim=16,
        kmm_heads=2,
        kmm_topk=4,
        kmm_field_names=["alpha", "beta", "gamma"],
    )
    base.update(overrides)
    return LoKiFormerConfig(**base)


def make_model(seed: int = 0, **overrides) -> LoKiFormerForCausalLM:
    torch.manual_seed(seed)
    model = LoKiFormerForCausalLM(tiny_config(**overrides)).eval()
    # Random init gives near-zero memory values; scale them so fields matter.
    with torch.no_grad():
        for mem in model.memory_modules().values():
            mem.values.normal_(std=1.0)
            mem.out.weight.normal_(std=0.2)
    return model


def build_tiny_checkpoint(path: Path) -> Path:
    """Random weights, scaled so that fields matter, plus a real tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    model = make_model(
        seed=1,
        vocab_size=320,
        hidden_size=128,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=32,
        kv_latent_dim=64,
        intermediate_size=256,
        num_hidden_layers=2,
        kmm_layers=[0, 1],
        kmm_slots_per_field=64,
        kmm_key_dim=32,
        kmm_value_dim=32,
        kmm_heads=2,
        kmm_topk=4,
        max_position_embeddings=1024,
        bos_token_id=0,
        eos_token_id=1,
    )
    model.save_pretrained(path)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320, special_tokens=["<bos>", "<eos>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    text = ["the capital of Zorvia is Quellmark and its river is the Ostra"] * 50
    tok.train_from_iterator(text, trainer)
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>").save_pretrained(path)
    return path


# --------------------------------------------------------------------------- processes


def shutdown(llm) -> None:
    """Stop a vLLM ``LLM``'s engine core now (its processes outlive ``del`` otherwise)."""
    engine = getattr(llm, "llm_engine", None)
    core = getattr(engine, "engine_core", None)
    if core is not None and hasattr(core, "shutdown"):
        core.shutdown()
    del llm
    gc.collect()


def free_port() -> int:
    """A loopback port free *now*: another process may take it before the
    server binds it (``PortClash``; ``running`` then starts again elsewhere)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PortClash(RuntimeError):
    """The server could not bind a port picked free: another process took it
    in between (vLLM's engines pick their own ports from the same range)."""


def log_excerpt(log: Path, tail: int = 3000) -> str:
    """The lines that say what went wrong (errors, exceptions) and the log's
    tail: a plain tail can be all shutdown noise (Triton's nanobind leak
    report alone is ~4 KB) and hide the cause."""
    text = log.read_text(errors="replace") if log.is_file() else ""
    marks = ("error", "exception", "traceback")
    causes = [line for line in text.splitlines()
              if any(m in line.lower() for m in marks) and "nanobind" not in line and "leaked" not in line]
    head = "\n".join(causes[:20])
    return f"{head}\n... log tail:\n{text[-tail:]}" if head else text[-tail:]


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 300.0) -> None:
    """Wait until ``url`` answers 200; ``PortClash`` if the server died because
    a port was taken, ``RuntimeError``/``TimeoutError`` with the log otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            excerpt = log_excerpt(log)
            error = PortClash if "address already in use" in excerpt.lower() else RuntimeError
            raise error(f"server exited with {proc.returncode}:\n{excerpt}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} not up after {timeout}s:\n{log_excerpt(log)}")


def spawn(cmd: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    """``cmd`` in its own process group (``stop`` ends all of it), output to ``log``."""
    full_env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", **(env or {})}
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=REPO,
                                start_new_session=True)


def start_until_up(launch, log: Path, env: dict | None = None, timeout: float = 300.0, attempts: int = 3):
    """Start ``launch() -> (cmd, health_url)`` and wait until it answers; on a
    ``PortClash`` call ``launch`` again (it picks new ports), up to ``attempts``
    times. Returns the running process."""
    for attempt in range(1, attempts + 1):
        cmd, health_url = launch()
        proc = spawn(cmd, log, env)
        try:
            wait_http(health_url, proc, log, timeout)
            return proc
        except PortClash:
            stop(proc)
            if attempt == attempts:
                raise
            print(f"port clash, starting again on other ports (attempt {attempt + 1}/{attempts})", flush=True)
        except BaseException:
            stop(proc)
            raise


@contextmanager
def running(launch, log: Path, env: dict | None = None, timeout: float = 300.0, attempts: int = 3):
    """Run a server until the block ends (SIGTERM, then SIGKILL, to its group).
    ``launch() -> (cmd, health_url)`` picks fresh ports each call: it is called
    again after a ``PortClash`` (``start_until_up``)."""
    proc = start_until_up(launch, log, env, timeout, attempts)
    try:
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen, grace: float = 30.0) -> int | None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    else:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # stray children of a dead leader
        except ProcessLookupError:
            pass
    return proc.returncode


__all__ = ["tiny_config", "make_model", "build_tiny_checkpoint", "shutdown", "free_port", "PortClash", "log_excerpt",
           "wait_http", "spawn", "start_until_up", "running", "stop"]
