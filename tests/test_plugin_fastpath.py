"""The vLLM plugin's fast path for a converted Llama (issue 14, throughput).

A converted model has every LFA gate exactly 0 (``lfa_enabled=False`` in its
config) and an empty memory. The plugin then serves it as a plain attention
model (no hybrid conv state), takes k and v straight from the latent (kv_up
is an identity selection) and skips an all-empty memory. Checked here: the
flag and its refusal, the skip's exactness, identical greedy tokens to plain
vLLM Llama, field swaps through the worker operations, and that a model with
a live LFA keeps the hybrid path.
"""

from __future__ import annotations

import json

import pytest
import torch

from lokiserve.config import LoKiFormerConfig
from lokiserve.convert import MemoryLayout, convert
from lokiserve.memory import Field, write_field
from tests.engine_utils import assert_matches_reference, build_tiny_checkpoint, make_llm, reference, shutdown
from tests.test_convert import save_tiny_llama

LAYOUT = MemoryLayout(field_names=("alpha", "beta"), slots_per_field=16, heads=2, key_dim=8, value_dim=8, topk=4)


def test_lfa_flag_drives_layer_types_and_is_not_saved(tmp_path):
    assert LoKiFormerConfig().lfa_enabled is True and LoKiFormerConfig().layer_types is None
    off = LoKiFormerConfig(lfa_enabled=False, num_hidden_layers=3, kmm_layers=[1])
    assert off.layer_types == ["full_attention"] * 3
    off.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["lfa_enabled"] is False and "layer_types" not in saved
    assert LoKiFormerConfig.from_pretrained(tmp_path).layer_types == ["full_attention"] * 3
    with pytest.raises(ValueError, match="lfa_enabled"):
        LoKiFormerConfig(lfa_enabled="no")


def test_kmm_op_returns_exact_zeros_for_an_empty_memory():
    from lokiserve.kernels import kmm_decode
    from lokiserve_vllm import model  # noqa: F401  (registers torch.ops.vllm.lokiformer_kmm)

    g = torch.Generator().manual_seed(0)
    q, keys, values = torch.randn(5, 2, 8, generator=g), torch.randn(3, 16, 8, generator=g), torch.randn(3, 16, 4, generator=g)
    empty = torch.zeros(3, dtype=torch.bool)
    assert torch.equal(torch.ops.vllm.lokiformer_kmm(q, keys, values, empty, 4), torch.zeros(5, 2, 4))
    live = torch.tensor([False, True, False])
    assert torch.equal(torch.ops.vllm.lokiformer_kmm(q, keys, values, live, 4), kmm_decode(q, keys, values, live, 4))


# --------------------------------------------------------------------------- on the engine


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(source Llama dir, converted LoKiFormer dir); head_dim 32 for vLLM's CPU attention."""
    root = tmp_path_factory.mktemp("fastpath")
    src = save_tiny_llama(root / "llama", hidden_size=128, head_dim=32)
    return src, convert(src, root / "loki", layout=LAYOUT)


@pytest.fixture
def inline(monkeypatch):
    """Engine core in this process, so a test can look at the model itself."""
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")


def the_model(llm):
    return llm.llm_engine.model_executor.driver_worker.worker.model_runner.model


def greedy(llm, prompts):
    from vllm import SamplingParams, TokensPrompt

    params = SamplingParams(temperature=0.0, max_tokens=8, logprobs=5, ignore_eos=True)
    return llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], params, use_tqdm=False)


def tokens(outs):
    return [list(o.outputs[0].token_ids) for o in outs]


def prompts_for(vocab: int) -> list[list[int]]:
    g = torch.Generator().manual_seed(3)
    return [torch.randint(3, vocab, (n,), generator=g).tolist() for n in (3, 9, 20, 41, 70)]


@pytest.mark.engine
def test_converted_model_runs_without_lfa_state_like_plain_llama(pair, inline, tmp_path):
    from lokiserve.control import MemoryControl
    from lokiserve_vllm.lfa import ZeroGateLFA

    src, out = pair
    ref = reference(out)
    prompts = prompts_for(ref.config.vocab_size)
    llama = make_llm(src, worker_extension_cls="", max_model_len=256)
    try:
        plain = greedy(llama, prompts)
    finally:
        shutdown(llama)
    llm = make_llm(out, max_model_len=256)
    try:
        assert llm.llm_engine.model_config.is_hybrid is False
        model = the_model(llm)
        assert all(isinstance(layer.lfa, ZeroGateLFA) for layer in model.model.layers)
        assert all(layer.attn.latent_split is not None for layer in model.model.layers)
        empty = greedy(llm, prompts)
        assert tokens(empty) == tokens(plain)
        worst = max(abs(a[t].logprob - b[t].logprob) for x, y in zip(empty, plain)
                    for a, b in zip(x.outputs[0].logprobs, y.outputs[0].logprobs) for t in set(a) & set(b))
        assert worst <= 1e-4, worst
        assert_matches_reference(ref, prompts, empty)

        # a field written through the worker operations is read at once (the empty-memory skip is per step)
        g, gen = ref.config.memory_geometry, torch.Generator().manual_seed(0)
        field = Field(name="alpha", backbone=ref.backbone_hash(),
                      keys={i: torch.randn(g.slots, g.key_dim, generator=gen) for i in g.layers},
                      values={i: torch.randn(g.slots, g.value_dim, generator=gen) * 8 for i in g.layers})
        write_field(field, tmp_path / "alpha.safetensors")
        control = MemoryControl(llm.collective_rpc, llm.reset_prefix_cache)
        control.apply_field("alpha", tmp_path / "alpha.safetensors")
        ref.apply_field("alpha", field)
        written = greedy(llm, prompts)
        assert tokens(written) != tokens(empty)
        assert_matches_reference(ref, prompts, written)
        control.zero_field("alpha")
        again = greedy(llm, prompts)
        assert tokens(again) == tokens(empty)
        assert all(a.outputs[0].logprobs == b.outputs[0].logprobs for a, b in zip(again, empty))
    finally:
        shutdown(llm)


@pytest.mark.engine
def test_a_nonzero_gate_contradicting_the_flag_is_refused(pair, inline, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    _, out = pair
    bad = shutil.copytree(out, tmp_path / "bad")
    state = load_file(bad / "model.safetensors")
    state["model.layers.1.lfa.gate"][5] = 0.25
    save_file(state, bad / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(Exception, match="lfa_enabled"):
        make_llm(bad, max_model_len=256)


@pytest.mark.engine
def test_a_live_lfa_keeps_the_hybrid_path(inline, tmp_path):
    from lokiserve_vllm.lfa import LocalFusionConv

    llm = make_llm(build_tiny_checkpoint(tmp_path / "tiny"), max_model_len=256)
    try:
        assert llm.llm_engine.model_config.is_hybrid is True
        assert all(isinstance(layer.lfa, LocalFusionConv) for layer in the_model(llm).model.layers)
    finally:
        shutdown(llm)


@pytest.mark.engine
def test_tensor_parallel_2_takes_each_ranks_keys_and_values_from_the_latent(pair, monkeypatch):
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "0|1")  # one core list per rank
    _, out = pair
    ref = reference(out)
    prompts = prompts_for(ref.config.vocab_size)
    llm = make_llm(out, max_model_len=256, tensor_parallel_size=2, distributed_executor_backend="mp")
    try:
        assert llm.llm_engine.model_config.is_hybrid is False
        assert_matches_reference(ref, prompts, greedy(llm, prompts))
    finally:
        shutdown(llm)
