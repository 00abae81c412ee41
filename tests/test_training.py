"""The demo trainer (``lokiserve train-demo``, bound slots) on a tiny model in seconds."""

from __future__ import annotations

import json

import pytest
import torch

from lokiserve.train.bound_slots import VALUE_CODEBOOK, answer_token_ids, answer_values, load_codebook, null_slot
from lokiserve.train.data import Encoder
from lokiserve.train.checkpoint import load_model
from lokiserve.train.trainer import train_backbone
from lokiserve.train.world import RESERVE_FIELD, TRAINED_DOMAINS, read_facts


def test_short_training_lowers_the_loss(tiny_run):
    _, _, _, info, _ = tiny_run
    losses = [h["loss"] for h in info["history"]]
    assert len(losses) == 40
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 0.5, (first, last)


def test_training_is_deterministic_and_resumable(tiny_run, tmp_path):
    """Stop at step 20, resume to 40: the same losses and weights as one uninterrupted run."""
    cfg, model, _, info, _ = tiny_run
    quiet = dict(progress=False, log=lambda *_: None)
    train_backbone(cfg, tmp_path / "r", resume=False, stop_at=20, **quiet)
    assert (tmp_path / "r" / "checkpoint.pt").exists()
    resumed, _, _, info2 = train_backbone(cfg, tmp_path / "r", resume=True, **quiet)
    assert [h["loss"] for h in info2["history"]] == pytest.approx([h["loss"] for h in info["history"]], rel=1e-5)
    resumed.zero_field(RESERVE_FIELD)  # the shipped model had its reserve field zeroed
    for (n, a), (_, b) in zip(model.state_dict().items(), resumed.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=n)
    torch.testing.assert_close(info["value_codebook"], info2["value_codebook"], rtol=1e-5, atol=1e-6)


def test_saved_model_ships_reserve_empty_and_loads(tiny_run):
    _, _, world, _, out = tiny_run
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "world.jsonl",
                 "generation_config.json", VALUE_CODEBOOK):
        assert (out / name).exists(), name
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model_type"] == "lokiformer" and cfg["kmm_field_names"][-1] == RESERVE_FIELD
    assert cfg["bos_token_id"] == 1 and cfg["eos_token_id"] == 2
    m = load_model(out)
    assert m.field_state(RESERVE_FIELD) == "zeroed"
    assert m.export_field(RESERVE_FIELD).is_empty()
    rows = read_facts(out / "world.jsonl")
    assert len(rows) == len(world.facts) and set(rows[0]) >= {"domain", "field", "prompt", "answer"}


def _answer_id(tok, answer: str) -> int:
    from lokiserve.train.tokenizer import encode

    return encode(tok, answer)[0]  # a bound slot stores the answer's first token


def test_bound_training_stores_every_answer_in_its_slot(tiny_run):
    """Fact i of a domain sits in slot i of its field; its value (every KMM
    layer) lists the answer's tokens, each its row of the shipped codebook's
    chunk for that position; the null slot and the
    slots after the facts are empty; the codebook ships with the model."""
    from lokiserve.train.tokenizer import load_tokenizer

    cfg, _, world, _, out = tiny_run
    assert json.loads((out / "config.json").read_text())["kmm_value_codebook"] == VALUE_CODEBOOK
    codebook = load_codebook(out / VALUE_CODEBOOK)
    tok = load_tokenizer(out)
    J = cfg.answer_tokens  # a value lists an answer's first J tokens, one chunk each
    assert codebook.shape == (J, tok.get_vocab_size(), cfg.kmm_value_dim // J)
    model = load_model(out)
    enc = Encoder(tok)
    for d in TRAINED_DOMAINS:
        f = model.field_index(d)
        facts = world.by_domain(d)
        want = answer_values(codebook, torch.tensor([answer_token_ids(enc, x.answer, J) for x in facts]))
        assert torch.equal(want[:, : cfg.kmm_value_dim // J], codebook[0][[_answer_id(tok, x.answer) for x in facts]])
        for mem in model.memory_modules().values():
            torch.testing.assert_close(mem.values[f, : len(facts)], want, rtol=0, atol=0)
            assert not mem.values[f, len(facts):].any()
            assert null_slot(mem.values.shape[1]) >= len(facts)
    assert model.export_field(RESERVE_FIELD).is_empty()


FIELD_ARGS = ["--facts", "f.jsonl", "--field", "x", "--out", "o"]


@pytest.mark.parametrize("command, flag, value, words", [
    ("train-demo", "--steps", "0", "must be >= 1"),
    ("train-demo", "--lr", "-1e-3", "must be > 0"),
    ("train-demo", "--memory-lr", "nan", "must be > 0"),
    ("train-demo", "--practice-every", "0", "must be >= 1"),
    ("train-demo", "--retrieval-weight", "-1", "must be >= 0"),
    ("train-demo", "--batch-size", "eight", "is not a int"),
    ("train-demo", "--answer-tokens", "0", "must be >= 1"),
    ("train-demo", "--name-share", "1.5", "must be >= 0 and <= 1"),
    ("train-field", "--retain-share", "-0.1", "must be >= 0"),
    ("train-field", "--steps", "0", "must be >= 1"),
    ("train-field", "--min-efficacy", "1.5", "must be >= 0 and <= 1"),
    ("train-field", "--min-retain", "nan", "must be >= 0 and <= 1"),
    ("edit", "--value-steps", "0", "must be >= 1"),
    ("edit", "--key-steps", "two", "is not a int"),
])
def test_training_flags_refuse_bad_numbers_before_any_work(command, flag, value, words, capsys, tmp_path):
    """Out-of-range or non-finite values stop at parse time (exit 2) with the
    flag named; nothing is trained or written."""
    from lokiserve.cli import main

    where = ["--out", str(tmp_path / "demo"), "--run-dir", str(tmp_path / "run")] if command == "train-demo" else FIELD_ARGS
    with pytest.raises(SystemExit) as exc:
        main([command, *where, f"{flag}={value}"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and words in err, err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("command, flag", [
    ("train-demo", "--shadow-share=0.4"), ("train-demo", "--practice-episode-steps=5"),
    ("train-demo", "--memory-readout-weight=0.5"), ("train-demo", "--no-bound-slots"),
    ("train-demo", "--new-field-init=random"),
    ("train-field", "--init=random"), ("train-field", "--allocate-slots"), ("train-field", "--readout-weight=1"),
])
def test_deleted_free_value_options_are_gone(command, flag, capsys, tmp_path):
    """The first demo's free-value scheme is deleted: its options are unknown flags (exit 2), nothing runs."""
    from lokiserve.cli import main

    where = ["--out", str(tmp_path / "demo"), "--run-dir", str(tmp_path / "run")] if command == "train-demo" else FIELD_ARGS
    with pytest.raises(SystemExit) as exc:
        main([command, *where, flag])
    assert exc.value.code == 2
    assert flag.split("=")[0] in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_value_width_the_answer_tokens_do_not_divide_is_refused_before_any_work(capsys, tmp_path):
    from lokiserve.cli import main

    rc = main(["train-demo", "--value-dim", "250", "--answer-tokens", "4", "--run-dir", str(tmp_path / "run"),
               "--out", str(tmp_path / "out"), "--bench-dir", str(tmp_path / "bench")])
    assert rc == 2 and "not a multiple of --answer-tokens 4" in capsys.readouterr().err
    assert not (tmp_path / "run").exists() and not (tmp_path / "out").exists()
