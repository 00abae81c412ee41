"""The converted SmolLM2-135M on the real vLLM engine and the real server.

* vLLM parity: the converted LoKiFormer in vLLM gives exactly the greedy
  tokens of plain vLLM serving the de-quantized source Llama (saved as an
  ordinary HF directory), 32 prompts in one batch with prefix caching on,
  top-5 logprobs within 1e-3 in float32.
* Served: ``lokiserve serve`` on the converted model answers chat
  completions with the instruct template like the reference model; a field
  written into it changes answers, and zeroing it restores them bit for bit,
  through the admin API.
"""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer

from lokiserve.convert import export_source_llama
from lokiserve.memory import Field, field_to_bytes
from lokiserve.model import LoKiFormerForCausalLM
from tests.admin_utils import serving, listing
from tests.engine_utils import make_llm, shutdown

pytestmark = pytest.mark.engine
LOGPROB_TOL = 1e-3

TOPICS = ["the capital of France", "photosynthesis", "the Moon", "prime numbers", "the French Revolution",
          "black holes", "Shakespeare", "the water cycle", "volcanoes", "the Roman Empire", "DNA", "jazz",
          "the Pacific Ocean", "gravity", "the printing press", "honeybees"]


def prompts_for(tokenizer) -> list[list[int]]:
    """32 prompts of many lengths: 16 plain, 16 chat-formatted (they share the
    template's prefix, which the prefix cache then serves)."""
    plain = [f"Here is one short fact about {t}:" + " Please be brief." * (i % 4) for i, t in enumerate(TOPICS)]
    chats = [[{"role": "user", "content": f"Tell me about {t}." + " In one sentence." * (i % 3)}]
             for i, t in enumerate(TOPICS)]
    ids = [tokenizer(p).input_ids for p in plain]
    ids += [tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
            for c in chats]
    return ids


@pytest.fixture(scope="module")
def converted(smollm2):
    return smollm2[1]


@pytest.fixture(scope="module")
def tokenizer(converted):
    return AutoTokenizer.from_pretrained(converted)


def run_engine(path, prompts, *, extension: bool):
    from vllm import SamplingParams, TokensPrompt

    overrides = {} if extension else {"worker_extension_cls": ""}
    llm = make_llm(path, max_model_len=512, max_num_batched_tokens=512, max_num_seqs=32, **overrides)
    try:
        params = SamplingParams(temperature=0.0, max_tokens=8, logprobs=5, ignore_eos=True)
        outs = llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], params, use_tqdm=False)
        return [(list(o.outputs[0].token_ids), [{t: lp.logprob for t, lp in step.items()}
                                                 for step in o.outputs[0].logprobs]) for o in outs]
    finally:
        shutdown(llm)


def test_vllm_converted_equals_plain_vllm_llama(smollm2, converted, tokenizer, tmp_path_factory):
    source, _ = smollm2
    llama_dir = export_source_llama(source, tmp_path_factory.mktemp("plain") / "smollm2-llama")
    prompts = prompts_for(tokenizer)
    assert len(prompts) >= 30 and len({len(p) for p in prompts}) >= 15
    loki = run_engine(converted, prompts, extension=True)
    llama = run_engine(llama_dir, prompts, extension=False)
    worst = 0.0
    for i, ((lt, llp), (rt, rlp)) in enumerate(zip(loki, llama)):
        assert lt == rt, f"prompt {i} ({len(prompts[i])} tokens): {tokenizer.decode(lt)!r} vs {tokenizer.decode(rt)!r}"
        for a, b in zip(llp, rlp):
            for token in set(a) & set(b):
                worst = max(worst, abs(a[token] - b[token]))
    print(f"\nmax |logprob diff| converted vs plain Llama in vLLM: {worst:.2e}")
    assert worst <= LOGPROB_TOL


# --------------------------------------------------------------------------- served


@pytest.fixture(scope="module")
def server(converted, tmp_path_factory):
    # a field of the default geometry is 18.9 MB (4096 slots x (128 + 256) x 3 layers, float32)
    yield from serving(converted, tmp_path_factory, extra=["--max-model-len", "512", "--max-field-bytes", str(64 << 20)])


@pytest.fixture(scope="module")
def reference(converted):
    return LoKiFormerForCausalLM.from_pretrained(converted, dtype=torch.float32).eval()


def completions(server, prompts: list[list[int]], n: int = 8) -> list[tuple[list[int], list[float]]]:
    import httpx

    out = []
    for p in prompts:
        r = httpx.post(f"{server.api}/completions", json={
            "model": server.name, "prompt": p, "max_tokens": n, "temperature": 0, "logprobs": 1,
            "return_tokens_as_token_ids": True, "ignore_eos": True}, timeout=120)
        r.raise_for_status()
        lp = r.json()["choices"][0]["logprobs"]
        out.append(([int(t.split(":")[1]) for t in lp["tokens"]], lp["token_logprobs"]))
    return out


def test_chat_completions_use_the_instruct_template(server, reference, tokenizer):
    from openai import OpenAI

    client = OpenAI(base_url=server.api, api_key="unused")
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    r = client.chat.completions.create(model=server.name, messages=messages, max_tokens=12, temperature=0)
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                        return_dict=True)["input_ids"]
    x = torch.tensor([ids])
    want = reference.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=12, do_sample=False,
                              pad_token_id=tokenizer.pad_token_id)[0, len(ids):]
    text = r.choices[0].message.content
    assert text == tokenizer.decode(want, skip_special_tokens=True).strip() or \
        text.strip() == tokenizer.decode(want, skip_special_tokens=True).strip(), text
    assert "Paris" in text


def test_a_written_field_changes_answers_and_zeroing_restores_them_bit_for_bit(server, reference, tokenizer):
    with server.http() as admin:
        fields = listing(admin)["fields"]
        assert {f["state"] for f in fields} == {"zeroed"}  # attached, empty memory
        exported = admin.get("/memory/fields/general/file")
        assert exported.status_code == 200
        from lokiserve.memory import read_field

        assert read_field(exported.content).backbone == reference.backbone_hash()
        probe = prompts_for(tokenizer)[::4]
        before = completions(server, probe)
        g = reference.config.memory_geometry
        gen = torch.Generator().manual_seed(0)
        field = Field(name="general", backbone=reference.backbone_hash(),
                      keys={i: torch.randn(g.slots, g.key_dim, generator=gen) for i in g.layers},
                      values={i: torch.randn(g.slots, g.value_dim, generator=gen) * 4 for i in g.layers})
        r = admin.put("/memory/fields/general", content=field_to_bytes(field),
                      headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 200 and r.json()["state"] == "active", r.text
        during = completions(server, probe)
        assert sum(a[0] != b[0] for a, b in zip(before, during)) >= len(probe) // 2  # the field changes answers
        reference.apply_field("general", field)
        try:  # the served model with the field is the reference with the field
            for p, (tokens, _) in zip(probe, during):
                x = torch.tensor([p])  # an explicit mask: the prompt may contain the pad token (chat markers)
                out = reference.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=8, do_sample=False,
                                         eos_token_id=None, pad_token_id=tokenizer.pad_token_id)
                assert tokens == out[0, len(p):].tolist()
        finally:
            reference.zero_field("general")
        assert admin.post("/memory/fields/general/zero").status_code == 200
        after = completions(server, probe)
        assert after == before  # tokens and logprobs, bit for bit


EDITS = [  # real facts the model knows, each given a counterfactual answer of another length
    {"prompt": "The capital of France is", "subject": "France", "answer": "Rome",
     "paraphrases": ["In Europe, the capital city of France is"],
     "neighbors": [{"prompt": "The capital of Germany is", "answer": "Berlin"}]},
    {"prompt": "The author of Hamlet is William", "subject": "Hamlet", "answer": "Wordsworth",
     "paraphrases": ["The famous play Hamlet was written by William"],
     "neighbors": [{"prompt": "The author of Pride and Prejudice is Jane", "answer": "Austen"}]},
    {"prompt": "The capital of Japan is", "subject": "Japan", "answer": "Buenos Aires",
     "paraphrases": ["In Asia, the capital city of Japan is"],
     "neighbors": [{"prompt": "The capital of China is", "answer": "Beijing"}]},
]


def test_a_written_edit_field_is_served_and_zeroing_restores_it_bit_for_bit(server, reference, converted):
    """The general writer on the real model: a verified field, PUT, gives the
    new answers through the official openai client on prompts and their
    paraphrases, leaves the neighbours alone; zeroing restores everything."""
    from openai import OpenAI

    from lokiserve.edit.encoding import Codec
    from lokiserve.edit.facts import parse_facts
    from lokiserve.edit.service import default_retain
    from lokiserve.edit.writer import write_facts

    facts = parse_facts(EDITS)
    result = write_facts(reference, Codec.from_model_dir(converted), "edits", facts, retain=default_retain(converted))
    assert result.passed, result.report
    assert reference.field_state("edits") == "zeroed"  # the writer leaves the reference model as it was
    client = OpenAI(base_url=server.api, api_key="unused", max_retries=0)

    def answer(prompt: str):
        r = client.completions.create(model=server.name, prompt=prompt, max_tokens=6, temperature=0, logprobs=1)
        return r.choices[0].text, r.choices[0].logprobs.token_logprobs

    edited = [fa.prompt for fa in facts] + [p for fa in facts for p in fa.paraphrases]
    neighbors = [n.prompt for fa in facts for n in fa.neighbors]
    before = [answer(p) for p in edited + neighbors]
    with server.http() as admin:
        r = admin.put("/memory/fields/edits", content=field_to_bytes(result.field),
                      headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 200, r.text
        assert r.json()["report"]["passed"]
        during = [answer(p) for p in edited + neighbors]
        for p, (text, _) in zip(edited, during):
            want = next(fa.answer for fa in facts if p == fa.prompt or p in fa.paraphrases)
            assert text.strip().startswith(want), (p, text)
        assert [t for t, _ in during[len(edited):]] == [t for t, _ in before[len(edited):]]
        assert admin.post("/memory/fields/edits/zero").status_code == 200
    assert [answer(p) for p in edited + neighbors] == before  # text and logprobs, bit for bit
