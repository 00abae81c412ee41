"""``TrainConfig``: every knob of ``lokiserve train-demo``, and the model it builds.

The defaults rebuild the shipped demo (``memories/demo``). Model dimensions
are one block (``MODEL_FIELDS``) handed to ``LoKiFormerConfig`` as they are,
so the two can never disagree about a name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lokiserve.config import LoKiFormerConfig
from lokiserve.train.world import FIELD_NAMES

# TrainConfig fields that are LoKiFormerConfig kwargs of the same name.
MODEL_FIELDS = (
    "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim",
    "intermediate_size", "kv_latent_dim", "kmm_layers", "kmm_slots_per_field", "kmm_key_dim",
    "kmm_value_dim", "kmm_heads", "kmm_topk",
)


@dataclass
class TrainConfig:
    seed: int = 0
    # world
    entities_per_domain: int = 50
    new_entities: int = 40
    practice_entities: int = 40
    vocab_size: int = 2560
    # model (MODEL_FIELDS)
    hidden_size: int = 256
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int = 64
    intermediate_size: int = 704
    kv_latent_dim: int = 128
    kmm_layers: list[int] = field(default_factory=lambda: [1, 3])
    kmm_slots_per_field: int = 256
    kmm_key_dim: int = 64
    kmm_value_dim: int = 256  # 4 chunks of 64: one per answer token a value lists (answer_tokens)
    kmm_heads: int = 4
    kmm_topk: int = 4
    # optimisation
    steps: int = 2800
    batch_size: int = 64
    lr: float = 3e-3
    memory_lr: float = 1e-2  # keys and the value codebook
    min_lr_ratio: float = 0.1
    warmup: int = 100
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    text_weight: float = 0.2
    # field supervision (memories/demo/README.md says why each exists)
    drop_other: float = 0.2
    drop_reserve: float = 0.5
    zero_own: float = 0.15
    practice_share: float = 0.15
    practice_every: int = 250
    # No practice round starts that could not run ``practice_every`` steps before the end: the last one runs
    # longer instead. (The first bound-slot demo started its last round 50 steps before the end, with fresh keys,
    # and lost a few facts adapting to it: 96.7-100% at the end, 100% 50 steps before.)
    whole_practice_rounds: bool = True
    retrieval_weight: float = 1.0  # the loss that names each fact's slot
    # Any-answer reading (memories/demo/README.md): a slot's value lists up to ``answer_tokens`` answer tokens,
    # one codebook chunk of kmm_value_dim / answer_tokens each, and every answer position reads the fact's slot,
    # so the backbone spells an answer from memory, not from the answers it has seen. 1: the value is the first
    # token's codebook row and the backbone spells the rest (the first bound-slot demo).
    answer_tokens: int = 4
    # Share of the random world's answers that are random names of 1..answer_tokens word pieces of the whole
    # vocabulary (``world.NameMaker``) instead of an answer of the fact's relation: every piece is then an
    # answer the backbone has emitted from a read.
    name_share: float = 0.5
    # With answer_tokens > 1: each codebook chunk is a free row plus a learned projection of the token's (tied)
    # embedding, so that a piece that is seldom an answer in training still has a value the backbone decodes
    # (shipped as the summed rows: the codebook file is the same either way).
    codebook_from_embeddings: bool = True
    # batch mix
    p_connective: float = 0.25
    p_two_facts: float = 0.1
    p_language: float = 0.05
    # bookkeeping
    eval_every: int = 250
    ckpt_every: int = 250
    threads: int = 1


def model_config(cfg: TrainConfig, vocab_size: int, special: dict[str, int]) -> LoKiFormerConfig:
    """The demo LoKiFormer for ``cfg``: one field per domain plus the reserve."""
    dims = {name: getattr(cfg, name) for name in MODEL_FIELDS}
    dims["kmm_layers"] = list(cfg.kmm_layers)
    return LoKiFormerConfig(
        vocab_size=vocab_size,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        kmm_num_fields=len(FIELD_NAMES),
        kmm_field_names=list(FIELD_NAMES),
        bos_token_id=special["bos"],
        eos_token_id=special["eos"],
        pad_token_id=special["pad"],
        **dims,
    )


__all__ = ["TrainConfig", "MODEL_FIELDS", "model_config"]
