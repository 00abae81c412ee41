"""Bound slots: how the demo's fields store facts (memories/demo/README.md).

A field stores fact *i* in slot *i*: its key is trained to be the one the
fact's prompt selects (a supervised retrieval loss), its value is the answer
token's row of a *value codebook* (vocab x d_v), learned with the backbone and
shipped next to the weights. While the backbone trains, every step states a
new random world, so no answer can be memorised by the backbone: it must read
the value. Writing a field is then the same operation for the shipped world,
an edit or a new domain (``field_training``). The last slot of every field,
the *null slot*, stays empty: a query about another domain is trained to read
it, so a field adds nothing to other domains' answers. The codebook is not
part of the served model: a field file holds plain keys and values.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from lokiserve.model import LoKiFormerForCausalLM
from lokiserve.train.data import Encoder

# config.kmm_value_codebook of a bound-slot model: the codebook's path in the model folder. In a
# subfolder, because vLLM loads every *.safetensors file at the top of a model folder as weights.
VALUE_CODEBOOK = "field_writer/value_codebook.safetensors"
CODEBOOK_FORMAT = "lokiserve.value_codebook/1"


def new_codebook(vocab: int, value_dim: int, gen: torch.Generator, answer_tokens: int = 1) -> torch.nn.Parameter:
    """(vocab, d_v) value per answer token, the memory's own init scale; with
    ``answer_tokens`` J > 1, (J, vocab, d_v / J): one chunk per answer
    position, so that a slot's value lists an answer's first J tokens side by
    side (``answer_values``)."""
    if answer_tokens == 1:
        return torch.nn.Parameter(torch.randn(vocab, value_dim, generator=gen) * 0.02)
    if value_dim % answer_tokens:
        raise ValueError(f"kmm_value_dim {value_dim} is not a multiple of answer_tokens {answer_tokens}")
    return torch.nn.Parameter(torch.randn(answer_tokens, vocab, value_dim // answer_tokens, generator=gen) * 0.02)


def codebook_tokens(codebook: torch.Tensor) -> int:
    """How many answer tokens a value of this codebook lists (J)."""
    return 1 if codebook.ndim == 2 else codebook.shape[0]


def save_codebook(codebook: torch.Tensor, path: str | Path) -> Path:
    from safetensors.torch import save_file

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file({"values": codebook.detach().contiguous().clone()}, str(path), metadata={"format": CODEBOOK_FORMAT})
    return Path(path)


def load_codebook(path: str | Path) -> torch.Tensor:
    from safetensors.torch import load_file

    return load_file(str(path))["values"]


def model_codebook(model: LoKiFormerForCausalLM, model_dir: str | Path) -> torch.Tensor | None:
    """The value codebook of a bound-slot model (``config.kmm_value_codebook``),
    or None for any other model."""
    if model.config.kmm_value_codebook is None:
        return None
    path = Path(model_dir) / model.config.kmm_value_codebook
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the model was trained with bound slots and its fields are "
                                "written from that value codebook")
    return load_codebook(path)


def null_slot(slots: int) -> int:
    """The slot kept empty in every field (value 0), read by every query that
    is not about the field's facts."""
    return slots - 1


def answer_token_ids(enc: Encoder, answer: str, answer_tokens: int) -> list[int]:
    """The ``answer_tokens`` ids a slot stores for an answer: its first tokens,
    -1 past its end (with 1, its first token alone: the first bound-slot
    demo's backbone spelled the rest from it, as in its training)."""
    ids = enc.text(answer)
    if not ids:
        raise ValueError(f"empty answer {answer!r}")
    ids = ids[:answer_tokens]
    return ids + [-1] * (answer_tokens - len(ids))


def slot_answer_ids(enc: Encoder, worlds: dict[int, list], num_fields: int, slots: int,
                    answer_tokens: int = 1) -> torch.Tensor:
    """(F, N) token id of the answer stored in each slot (-1: empty); with
    ``answer_tokens`` J > 1, (F, N, J): its first J tokens."""
    shape = (num_fields, slots) if answer_tokens == 1 else (num_fields, slots, answer_tokens)
    ids = torch.full(shape, -1, dtype=torch.long)
    for f, facts in worlds.items():
        if len(facts) > null_slot(slots):
            raise ValueError(f"{len(facts)} facts do not fit in {null_slot(slots)} slots (one stays empty)")
        rows = torch.tensor([answer_token_ids(enc, x.answer, answer_tokens) for x in facts], dtype=torch.long)
        ids[f, : len(facts)] = rows.squeeze(-1) if answer_tokens == 1 else rows
    return ids


def answer_values(codebook: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Answer token ids (-1: empty) -> their codebook rows (0 for empty;
    differentiable). A (J, vocab, C) codebook takes ids (..., J) and gives
    (..., J * C): position j's token in chunk j."""
    if codebook.ndim == 2:
        return codebook[ids.clamp(min=0)] * (ids >= 0).unsqueeze(-1).to(codebook.dtype)
    J = codebook.shape[0]
    if ids.shape[-1] != J:
        raise ValueError(f"a {J}-token codebook needs ids of shape (..., {J}), got {tuple(ids.shape)}")
    rows = codebook[torch.arange(J).expand_as(ids), ids.clamp(min=0)] * (ids >= 0).unsqueeze(-1).to(codebook.dtype)
    return rows.reshape(*ids.shape[:-1], J * codebook.shape[-1])


@torch.no_grad()
def write_bound_values(model: LoKiFormerForCausalLM, codebook: torch.Tensor, ids: torch.Tensor) -> None:
    """Store the answers ``ids`` (F, N) as the values of every field in every KMM layer."""
    table = answer_values(codebook, ids)
    memory = model.field_memory
    for layer, mem in memory.modules.items():
        memory.load(layer, "values", table.to(mem.values.dtype))


def retrieval_loss(model: LoKiFormerForCausalLM, batch: dict, queries: dict[int, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Sum over bound positions of the cross-entropy of the right slot among
    all slots of a field, for every field: the fact's slot in its own field,
    the null slot in every other field (mean over heads and KMM layers; the
    other fields weigh as much as the own one together); and the number of
    positions. ``queries``: what ``KmmOptions.queries`` captured (real tokens)."""
    st, mask = batch["slot_targets"], batch["mask"]
    pos = (st >= 0).nonzero()
    mems = model.memory_modules()
    first = next(iter(mems.values()))
    if len(pos) == 0:
        return first.keys.new_zeros(()), 0
    T = st.shape[1]
    rows = (mask.reshape(-1).long().cumsum(0) - 1)[pos[:, 0] * T + pos[:, 1]]
    own = batch["grad_fields"].float().argmax(dim=1)[pos[:, 0]]  # (P,)
    F, N = first.keys.shape[:2]
    target = torch.full((len(pos), F), null_slot(N), dtype=torch.long)
    target[torch.arange(len(pos)), own] = st[pos[:, 0], pos[:, 1]]
    is_own = torch.zeros(len(pos), F, dtype=torch.bool)
    is_own[torch.arange(len(pos)), own] = True
    weight = torch.where(is_own, 1.0, 1.0 / max(1, F - 1))  # own field 1, the other fields 1 together
    total = 0.0
    for layer, mem in mems.items():
        q = queries[layer][rows]  # (P, H, dk)
        scores = torch.einsum("phd,fnd->phfn", q, mem.keys) / math.sqrt(mem.key_dim)
        ce = torch.nn.functional.cross_entropy(scores.float().reshape(-1, N),
                                               target.unsqueeze(1).expand(-1, mem.heads, -1).reshape(-1),
                                               reduction="none").view(len(pos), mem.heads, F)
        total = total + (ce * weight.unsqueeze(1)).sum() / mem.heads
    return total / len(mems), len(pos)


__all__ = ["VALUE_CODEBOOK", "new_codebook", "codebook_tokens", "save_codebook", "load_codebook", "model_codebook",
           "null_slot", "answer_token_ids", "slot_answer_ids", "answer_values", "write_bound_values", "retrieval_loss"]
