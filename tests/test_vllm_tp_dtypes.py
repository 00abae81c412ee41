"""Tensor parallelism (2 ranks on this 2-core CPU) and bfloat16 on the real engine."""

from __future__ import annotations

import pytest
import torch

from lokiserve.memory import write_field
from tests.engine_utils import assert_matches_reference, make_llm, reference, shutdown
from tests.test_vllm_engine import checkpoint, generate, prompts_of_lengths, sampling  # noqa: F401

pytestmark = pytest.mark.engine


def test_tensor_parallel_2_matches_reference_and_swaps_every_rank(checkpoint, tmp_path, monkeypatch):
    from lokiserve.control import MemoryControl, Rpc

    # One core list per rank: vLLM CPU refuses TP=2 on one NUMA node otherwise.
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "0|1")
    ref = reference(checkpoint)
    llm = make_llm(checkpoint, tensor_parallel_size=2, distributed_executor_backend="mp")
    try:
        lengths = [1, 3, 7, 12, 20, 33, 47, 64, 65, 90, 130, 2, 5, 9, 15, 26, 38, 50, 70, 110,
                   4, 6, 8, 10, 14, 18, 22, 28, 36, 44]
        prompts = prompts_of_lengths(ref.config.vocab_size, lengths, seed=11)
        assert_matches_reference(ref, prompts, generate(llm, prompts, sampling()))

        control = MemoryControl(llm.collective_rpc, llm.reset_prefix_cache)
        reports = llm.collective_rpc(Rpc.REPORT)
        assert sorted(r["rank"] for r in reports) == [0, 1]
        assert reports[0]["backbone"] == reports[1]["backbone"] == ref.backbone_hash()

        name = ref.field_names[0]
        control.zero_field(name)
        ref.zero_field(name)
        short = prompts[:8]
        assert_matches_reference(ref, short, generate(llm, short, sampling()))
        moved = ref.export_field(1)
        write_field(moved, tmp_path / "f.safetensors")
        control.apply_field(name, tmp_path / "f.safetensors")
        ref.apply_field(name, moved)
        assert_matches_reference(ref, short, generate(llm, short, sampling()))
        # Each rank holds a different d_v slice; assembled, they are the field.
        assert {s.name: s.sha256 for s in control.report()}[name] == moved.sha256()
    finally:
        shutdown(llm)


def test_bfloat16_runs_in_the_multiprocess_engine(checkpoint):
    """bf16 on CPU used to die with 'Illegal instruction' (AMX permission);
    the plugin grants it in every process."""
    ref = reference(checkpoint)
    llm = make_llm(checkpoint, dtype="bfloat16")
    try:
        prompts = prompts_of_lengths(ref.config.vocab_size, [4, 16, 70], seed=12)
        outputs = generate(llm, prompts, sampling(logprobs=5))
        for out in outputs:
            completion = out.outputs[0]
            assert len(completion.token_ids) == 8
            assert all(torch.isfinite(torch.tensor([lp.logprob for lp in step.values()])).all() for step in completion.logprobs)
    finally:
        shutdown(llm)
