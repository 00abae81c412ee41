"""The vLLM plugin against the reference model, on the real vLLM CPU engine.

One engine (float32, prefix caching on, 64-token chunked prefill) serves
every test in this module; the reference model is the oracle.
"""

from __future__ import annotations

import importlib.metadata

import pytest
import torch

from lokiserve.memory import write_field
from tests.engine_utils import assert_matches_reference, build_tiny_checkpoint, demo_available, DEMO, make_llm, reference, shutdown

pytestmark = pytest.mark.engine


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    return DEMO if demo_available() else build_tiny_checkpoint(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def llm(checkpoint):
    engine = make_llm(checkpoint)
    yield engine
    shutdown(engine)


@pytest.fixture
def ref(checkpoint):
    return reference(checkpoint)


def sampling(max_tokens=8, logprobs=5):
    from vllm import SamplingParams

    return SamplingParams(temperature=0, max_tokens=max_tokens, logprobs=logprobs, ignore_eos=True)


def prompts_of_lengths(vocab: int, lengths, seed=0, prefix=()):
    g = torch.Generator().manual_seed(seed)
    return [list(prefix) + torch.randint(2, vocab, (n,), generator=g).tolist() for n in lengths]


def generate(llm, prompts, params):
    from vllm.inputs import TokensPrompt

    return llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], params, use_tqdm=False)


def test_plugin_entry_point_and_idempotent_registration():
    eps = importlib.metadata.entry_points(group="vllm.general_plugins")
    assert any(ep.name == "lokiserve" and ep.value == "lokiserve_vllm:register" for ep in eps)
    import lokiserve_vllm
    from transformers import AutoConfig
    from vllm import ModelRegistry

    lokiserve_vllm.register()
    lokiserve_vllm.register()
    assert "LoKiFormerForCausalLM" in ModelRegistry.get_supported_archs()
    assert AutoConfig.for_model("lokiformer").model_type == "lokiformer"


def test_greedy_and_logprobs_match_reference_in_mixed_batch(llm, ref):
    lengths = [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 150, 7, 4, 64, 65, 66, 129, 30, 31, 17,
               11, 9, 6, 40, 70, 100, 3, 2, 200, 12, 45, 19]
    assert len(lengths) >= 30 and max(lengths) > 64  # longer than the chunked-prefill chunk
    prompts = prompts_of_lengths(ref.config.vocab_size, lengths)
    outputs = generate(llm, prompts, sampling())
    assert_matches_reference(ref, prompts, outputs)


def test_prefix_cache_hits_give_reference_answers(llm, ref):
    shared = prompts_of_lengths(ref.config.vocab_size, [96], seed=5)[0]
    prompts = prompts_of_lengths(ref.config.vocab_size, [3, 9, 30, 1], seed=6, prefix=shared)
    first = generate(llm, prompts, sampling())
    again = generate(llm, prompts, sampling())  # served from cached blocks + conv state
    assert_matches_reference(ref, prompts, first)
    assert_matches_reference(ref, prompts, again)


def test_zero_and_apply_field_through_worker_ops_match_reference(llm, ref, tmp_path):
    from lokiserve.control import MemoryControl

    control = MemoryControl(llm.collective_rpc, llm.reset_prefix_cache)
    prompts = prompts_of_lengths(ref.config.vocab_size, [5, 17, 40, 80], seed=7)
    name = ref.field_names[1]
    original = ref.export_field(name)
    write_field(original, tmp_path / "original.safetensors")
    before = generate(llm, prompts, sampling())

    control.zero_field(name)
    ref.zero_field(name)
    zeroed = generate(llm, prompts, sampling())
    assert_matches_reference(ref, prompts, zeroed)
    assert [o.outputs[0].token_ids for o in zeroed] != [o.outputs[0].token_ids for o in before]

    edited = ref.export_field(0)  # another field's contents into this slot
    write_field(edited, tmp_path / "edited.safetensors")
    control.apply_field(name, tmp_path / "edited.safetensors")
    ref.apply_field(name, edited)
    assert_matches_reference(ref, prompts, generate(llm, prompts, sampling()))

    control.apply_field(1, tmp_path / "original.safetensors")
    ref.apply_field(1, original)
    restored = generate(llm, prompts, sampling())
    assert [o.outputs[0].token_ids for o in restored] == [o.outputs[0].token_ids for o in before]
    status = {s.name: s for s in control.report()}
    assert status[name].sha256 == original.sha256() and status[name].state == "active"


def test_bad_fields_are_refused_on_every_rank_and_change_nothing(llm, ref, tmp_path):
    from lokiserve.control import MemoryControl, MemoryOpError

    control = MemoryControl(llm.collective_rpc, llm.reset_prefix_cache)
    prompts = prompts_of_lengths(ref.config.vocab_size, [6, 33], seed=8)
    before_report = [(s.name, s.state, s.sha256) for s in control.report()]
    before = generate(llm, prompts, sampling(logprobs=None))

    good = ref.export_field(0)
    nan = ref.export_field(0)
    layer = next(iter(nan.values))
    nan.values[layer][0, 0] = float("nan")
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in nan.tensors().items()}, str(tmp_path / "nan.safetensors"), metadata=nan.header_metadata())
    other = ref.export_field(0)
    other.backbone = "f" * 64
    write_field(other, tmp_path / "other_backbone.safetensors")
    (tmp_path / "truncated.safetensors").write_bytes((write_field(good, tmp_path / "g.safetensors")).read_bytes()[:100])
    cases = {
        "nan.safetensors": 422,
        "other_backbone.safetensors": 409,
        "truncated.safetensors": 400,
        "missing.safetensors": 400,
    }
    for filename, status in cases.items():
        with pytest.raises(MemoryOpError) as err:
            control.apply_field(0, tmp_path / filename)
        assert err.value.status == status, (filename, err.value.message)
    with pytest.raises(MemoryOpError) as err:
        control.zero_field("no-such-field")
    assert err.value.status == 404
    assert [(s.name, s.state, s.sha256) for s in control.report()] == before_report
    after = generate(llm, prompts, sampling(logprobs=None))
    assert [o.outputs[0].token_ids for o in after] == [o.outputs[0].token_ids for o in before]


def test_report_checksums_equal_reference_exports(llm, ref):
    from lokiserve.control import MemoryControl

    control = MemoryControl(llm.collective_rpc, llm.reset_prefix_cache)
    for status in control.report():
        assert status.sha256 == ref.export_field(status.index).sha256()
        assert status.state == ref.field_state(status.index)
