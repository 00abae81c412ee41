"""Train the demo LoKiFormer on the synthetic world.

Field supervision (see memories/demo/README.md for the why):

* **bound slots** (the shipped scheme, ``bound_slots``): fact *i* of a domain
  lives in slot *i* of its field. A supervised *retrieval loss* trains the
  keys and the backbone's memory queries so that the position that predicts
  a fact's answer reads exactly that slot in its own field, and the *null
  slot* (the last, always empty) in every other field, so that a field adds
  nothing to other domains' answers. A slot's value is the answer token's row
  of a learned *value codebook* (vocab x d_v, shipped next to the weights as
  ``field_writer/value_codebook.safetensors``). Every step states a new
  random world (each fact gets a random answer of its relation), so the
  backbone cannot memorise any answer: it must decode the value it reads.
  Writing a field (the shipped world, an edit, a new domain) is then the same
  operation the backbone was trained on (``field_training``);
* every field is enabled in the forward pass, but a sequence's memory
  gradient reaches only its own domain's field (``kmm_grad_fields``);
* other fields are dropped at random (``kmm_field_scale`` = 0), p =
  ``drop_other`` (``drop_reserve`` for the reserve field, which ships empty),
  so no domain leans on a foreign field;
* with p = ``zero_own`` a sequence's own field is zeroed and the first token of
  every answer must be ``<abstain>``: the backbone learns not to recall facts
  by itself, so zeroing a field removes its domain;
* the reserve field holds a *practice* domain (the ``creatures`` schema with
  fresh entities) that is re-drawn and whose slice of memory is re-initialised
  every ``practice_every`` steps, so that a field of entities the backbone has
  never seen is a trained case; it is zeroed before the model is saved.

Options of the earlier free-value scheme (``bound_slots=False``: a field's
values are trained parameters), kept to reproduce the measurements in
memories/demo/README.md, off by default:

* ``practice_episode_steps``: each practice round starts with a
  *frozen-backbone episode*: only the fresh practice field trains, as in
  ``train-field``;
* *shadow fields* (training only): every trained domain has a second field
  that holds a counterfactual copy of the domain (``shadow_fraction`` of its
  answers re-drawn from the same relation's answers), re-drawn and
  re-trained every ``shadow_every`` steps, starting either from a copy of the
  real field (an edit) or from scratch (an insertion). A share
  ``shadow_share`` of the domain's sequences reads the shadow instead of the
  real field (measured: the backbone still memorised). The shadow fields are
  dropped when the model is saved;
* *memory read-out loss*: at every answer token, the last KMM layer's output
  alone, through the final norm and the tied LM head, must predict the
  answer (weight ``memory_readout_weight``; measured: it did not help, and
  slowed training).

AdamW, linear warmup + cosine decay, gradient clipping, tqdm, periodic eval,
resumable checkpoints (model, optimizer, step, RNG states), deterministic
from the seed on a given machine and thread count.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from lokiserve.model import LoKiFormerConfig, LoKiFormerForCausalLM, is_memory_tensor
from lokiserve.train.data import Encoder, fact_sequence, language_sequence, make_batch, weighted_loss
from lokiserve.train.fastkmm import fast_kmm, token_mask
from lokiserve.train.tokenizer import load_tokenizer, save_hf_tokenizer, special_ids, train_tokenizer
from lokiserve.train.world import (
    FIELD_NAMES, RESERVE_FIELD, TRAINED_DOMAINS, AnswerRedrawer, World, build_world, edit_domain, practice_facts,
    write_facts,
)

SHADOW_PREFIX = "shadow:"


def training_field_names(cfg: "TrainConfig") -> list[str]:
    """The shipped fields, then one shadow field per trained domain."""
    names = list(FIELD_NAMES)
    if cfg.shadow_share > 0:
        names += [SHADOW_PREFIX + d for d in TRAINED_DOMAINS]
    return names


@dataclass
class TrainConfig:
    seed: int = 0
    # world
    entities_per_domain: int = 50
    new_entities: int = 40
    practice_entities: int = 40
    vocab_size: int = 2560
    # model
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
    kmm_value_dim: int = 64
    kmm_heads: int = 4
    kmm_topk: int = 4
    # optimisation
    steps: int = 2800
    batch_size: int = 64
    lr: float = 3e-3
    memory_lr: float = 1e-2
    min_lr_ratio: float = 0.1
    warmup: int = 100
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    text_weight: float = 0.2
    memory_readout_weight: float = 0.0  # off: measured not to help (memories/demo/README.md)
    # field supervision
    drop_other: float = 0.2
    drop_reserve: float = 0.5
    zero_own: float = 0.15
    practice_share: float = 0.15
    practice_every: int = 250
    practice_episode_steps: int = 0  # >0: each practice round starts with this many frozen-backbone field steps
    bound_slots: bool = True  # fact i in slot i, values = the answers' codebook rows, a random world every step
    retrieval_weight: float = 1.0  # bound slots: weight of the loss that names each fact's slot
    shadow_share: float = 0.0  # off: measured not to help (memories/demo/README.md)
    shadow_every: int = 200
    shadow_fraction: tuple[float, float] = (0.5, 1.0)
    shadow_copy: float = 0.5
    # batch mix
    p_connective: float = 0.25
    p_two_facts: float = 0.1
    p_language: float = 0.05
    # bookkeeping
    eval_every: int = 250
    ckpt_every: int = 250
    threads: int = 1

    def __post_init__(self):
        if self.bound_slots and (self.shadow_share > 0 or self.practice_episode_steps > 0):
            raise ValueError("shadow fields and practice episodes train free field values; with bound slots a "
                             "field's values are codebook rows (use --no-bound-slots for them)")


def model_config(cfg: TrainConfig, vocab_size: int, special: dict[str, int],
                 field_names: list[str] | None = None) -> LoKiFormerConfig:
    field_names = list(field_names or FIELD_NAMES)
    return LoKiFormerConfig(
        vocab_size=vocab_size,
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_key_value_heads,
        head_dim=cfg.head_dim,
        intermediate_size=cfg.intermediate_size,
        kv_latent_dim=cfg.kv_latent_dim,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        kmm_layers=list(cfg.kmm_layers),
        kmm_num_fields=len(field_names),
        kmm_slots_per_field=cfg.kmm_slots_per_field,
        kmm_key_dim=cfg.kmm_key_dim,
        kmm_value_dim=cfg.kmm_value_dim,
        kmm_heads=cfg.kmm_heads,
        kmm_topk=cfg.kmm_topk,
        kmm_field_names=field_names,
        bos_token_id=special["bos"],
        eos_token_id=special["eos"],
        pad_token_id=special["pad"],
    )


def lr_factor(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def param_groups(model: LoKiFormerForCausalLM, cfg: TrainConfig) -> list[dict]:
    decay, no_decay, memory = [], [], []
    for name, p in model.named_parameters():
        if is_memory_tensor(name):
            memory.append(p)
        elif p.ndim == 2 and "embed" not in name:
            decay.append(p)
        else:
            no_decay.append(p)
    return [
        {"params": decay, "weight_decay": cfg.weight_decay, "base_lr": cfg.lr},
        {"params": no_decay, "weight_decay": 0.0, "base_lr": cfg.lr},
        {"params": memory, "weight_decay": 0.0, "base_lr": cfg.memory_lr},
    ]


@torch.no_grad()
def reinit_field(model: LoKiFormerForCausalLM, field_index: int, gen: torch.Generator,
                 optimizer: torch.optim.Optimizer | None = None) -> None:
    """Fresh memory for one field (the model's own init distribution), and a
    fresh optimizer state for that slice."""
    for mem in model.memory_modules().values():
        mem.keys[field_index].copy_(torch.randn(mem.keys.shape[1:], generator=gen))
        mem.values[field_index].copy_(torch.randn(mem.values.shape[1:], generator=gen) * 0.02)
        mem.enabled[field_index] = True
        if optimizer is not None:
            for p in (mem.keys, mem.values):
                state = optimizer.state.get(p)
                if state:
                    for key in ("exp_avg", "exp_avg_sq"):
                        state[key][field_index].zero_()


class Sampler:
    """Draws training sequences and field decisions from one seeded RNG."""

    def __init__(self, world: World, enc: Encoder, cfg: TrainConfig, field_of: dict[str, int]):
        self.world, self.enc, self.cfg, self.field_of = world, enc, cfg, field_of
        self.rng = random.Random(f"{cfg.seed}:sampler")
        self.facts = world.facts
        self.by_domain = {d: world.by_domain(d) for d in world.domains}
        self.practice: list = []
        self.shadow: dict[str, list] = {}  # domain -> its counterfactual facts (same order as by_domain)
        self.position = {(f.domain, f.entity, f.relation): i for facts in self.by_domain.values()
                         for i, f in enumerate(facts)}  # where a fact sits in by_domain, and so in shadow
        self.real_of_shadow = {field_of[SHADOW_PREFIX + d]: field_of[d] for d in TRAINED_DOMAINS
                               if SHADOW_PREFIX + d in field_of}
        # bound slots: fact i of a domain lives in slot i of its field; the world the
        # sequences state is redrawn every step (``redraw``), the field's values follow it
        self.redrawer = AnswerRedrawer() if cfg.bound_slots else None
        self.current: dict[str, list] = self.by_domain
        self.practice_current: list = []

    def redraw(self) -> None:
        """A fresh random world (bound slots): every fact gets a random answer of its relation."""
        self.current = {d: self.redrawer.redraw(facts, self.rng) for d, facts in self.by_domain.items()}
        self.practice_current = self.redrawer.redraw(self.practice, self.rng) if self.practice else []

    def bound_worlds(self, real: bool = False) -> dict[int, list]:
        """Field index -> the facts in its slots (the current random world, or the real one)."""
        worlds = self.by_domain if real else self.current
        out = {self.field_of[facts[0].field]: facts for facts in worlds.values()}
        practice = self.practice if real else self.practice_current
        if practice:
            out[self.field_of[RESERVE_FIELD]] = practice
        return out

    def _bound_sequence(self, pool: list, fidx: int):
        rng = self.rng
        idx = [rng.randrange(len(pool))]
        if rng.random() < self.cfg.p_two_facts:
            idx.append(rng.randrange(len(pool)))
        conn = rng.choice(self.world.connectives) if rng.random() < self.cfg.p_connective else None
        return fact_sequence(self.enc, [pool[i] for i in idx], fidx, rng, connective=conn, slots=idx)

    def sequence(self):
        cfg, rng = self.cfg, self.rng
        u = rng.random()
        if u < cfg.p_language:
            return language_sequence(self.enc, rng.sample(self.world.connectives, rng.randint(1, 3)))
        if self.practice and rng.random() < cfg.practice_share:
            if self.redrawer is not None:
                return self._bound_sequence(self.practice_current, self.field_of[RESERVE_FIELD])
            pool, fidx = self.practice, self.field_of[RESERVE_FIELD]
            f = rng.choice(pool)
            group = [f] if rng.random() >= cfg.p_two_facts else [f, rng.choice(pool)]
        else:
            f = rng.choice(self.facts)
            if self.redrawer is not None:
                return self._bound_sequence(self.current[f.domain], self.field_of[f.field])
            pool = self.by_domain[f.domain]
            fidx = self.field_of[f.field]
            if f.domain in self.shadow and rng.random() < cfg.shadow_share:
                pool = self.shadow[f.domain]
                f = pool[self.position[(f.domain, f.entity, f.relation)]]
                fidx = self.field_of[SHADOW_PREFIX + f.domain]
            group = [f] if rng.random() >= cfg.p_two_facts else [f, rng.choice(pool)]
        conn = rng.choice(self.world.connectives) if rng.random() < cfg.p_connective else None
        return fact_sequence(self.enc, group, fidx, rng, connective=conn)

    def batch(self, batch_size: int, num_fields: int, reserve: int):
        cfg, rng = self.cfg, self.rng
        seqs = [self.sequence() for _ in range(batch_size)]
        scale = torch.ones(batch_size, num_fields)
        shadows = list(self.real_of_shadow)
        for b, s in enumerate(seqs):
            for f in range(num_fields):
                if f in self.real_of_shadow:
                    continue  # shadow fields: set below
                if f == s.field:
                    if rng.random() < cfg.zero_own:
                        scale[b, f] = 0.0
                elif rng.random() < (cfg.drop_reserve if f == reserve else cfg.drop_other):
                    scale[b, f] = 0.0
            if not self.practice:
                scale[b, reserve] = 0.0
            if shadows:
                scale[b, shadows] = 0.0
            if s.field in self.real_of_shadow:  # the shadow stands in for the real field
                scale[b, self.real_of_shadow[s.field]] = 0.0
                scale[b, s.field] = 0.0 if rng.random() < cfg.zero_own else 1.0
        return seqs, scale

    def draw_shadows(self, round_index: int) -> dict[str, bool]:
        """New counterfactual facts for every domain; returns, per domain,
        whether its shadow field starts as a copy of the real field."""
        rng = random.Random(f"{self.cfg.seed}:shadow:{round_index}")
        copy = {}
        for d in TRAINED_DOMAINS:
            if SHADOW_PREFIX + d not in self.field_of:
                continue
            fraction = rng.uniform(*self.cfg.shadow_fraction)
            self.shadow[d] = edit_domain(self.world, d, fraction, seed=10_000 + round_index)
            copy[d] = rng.random() < self.cfg.shadow_copy
        return copy


@contextlib.contextmanager
def enabled_fields(model: LoKiFormerForCausalLM, names: list[str]):
    """Only the named fields take part (evaluation of a training model)."""
    mems = list(model.memory_modules().values())
    saved = [m.enabled.clone() for m in mems]
    keep = torch.tensor([n in names for n in model.field_names])
    try:
        for m, e in zip(mems, saved):
            m.enabled.copy_(e & keep)
        yield model
    finally:
        for m, e in zip(mems, saved):
            m.enabled.copy_(e)


@torch.no_grad()
def start_shadow(model: LoKiFormerForCausalLM, shadow: int, real: int, copy: bool, gen: torch.Generator,
                 optimizer: torch.optim.Optimizer | None) -> None:
    """A shadow field starts a new round: a copy of the real field (practising
    an edit) or fresh memory (practising an insertion); fresh optimizer state."""
    reinit_field(model, shadow, gen, optimizer)
    if copy:
        for mem in model.memory_modules().values():
            mem.keys[shadow].copy_(mem.keys[real])
            mem.values[shadow].copy_(mem.values[real])


class OneFieldTrainable:
    """The memory tensors of every KMM layer, made trainable, and ``restore``
    to call after each optimizer step: it puts back every slice except field
    ``f``'s (in ``layers``, default all KMM layers), so that only that field
    changes and every other tensor stays bit-identical."""

    def __init__(self, model: LoKiFormerForCausalLM, f: int, layers: list[int] | None = None,
                 tensors: tuple[str, ...] = ("keys", "values")):
        self.params: list[torch.Tensor] = []
        self._saved: list[tuple[torch.Tensor, torch.Tensor]] = []  # (original copy, slices to keep)
        for li, mem in model.memory_modules().items():
            keep = torch.ones(len(model.field_names), dtype=torch.bool)
            if layers is None or li in layers:
                keep[f] = False
            for p in (getattr(mem, t) for t in tensors):
                p.requires_grad_(True)
                self.params.append(p)
                self._saved.append((p.detach().clone(), keep))

    @torch.no_grad()
    def restore(self) -> None:
        for p, (orig, keep) in zip(self.params, self._saved):
            p[keep] = orig[keep]


def practice_episode(model: LoKiFormerForCausalLM, sampler: Sampler, reserve: int, special: dict, cfg: TrainConfig,
                     round_index: int, steps: int) -> float:
    """Train only the freshly re-initialised practice field, backbone and
    every other field frozen, the way ``train-field`` inserts a new domain
    (half of each batch practice facts, half the world's facts to retain).
    The joint steps that follow then teach the backbone to read a field
    trained like that. Returns the last loss."""
    rng = random.Random(f"{cfg.seed}:episode:{round_index}")
    flags = {p: p.requires_grad for p in model.parameters()}
    for p in model.parameters():
        p.requires_grad_(False)
    pin = OneFieldTrainable(model, reserve)
    opt = torch.optim.Adam(pin.params, lr=cfg.memory_lr, betas=(0.9, 0.98))
    scale = torch.ones(cfg.batch_size, len(model.field_names))
    scale[:, list(sampler.real_of_shadow)] = 0.0
    loss = torch.tensor(0.0)
    try:
        for _ in range(steps):
            half = cfg.batch_size // 2
            seqs = [fact_sequence(sampler.enc, [rng.choice(sampler.practice)], reserve, rng) for _ in range(half)]
            seqs += [fact_sequence(sampler.enc, [f], sampler.field_of[f.field], rng)
                     for f in (rng.choice(sampler.facts) for _ in range(cfg.batch_size - half))]
            opt.zero_grad(set_to_none=True)
            loss = train_micro_batches(model, seqs, scale, special, cfg)
            opt.step()
            pin.restore()
    finally:
        for p, flag in flags.items():
            p.requires_grad_(flag)
            p.grad = None
    return float(loss)


def shipped_model(model: LoKiFormerForCausalLM) -> LoKiFormerForCausalLM:
    """The model without its training-only shadow fields."""
    names = [n for n in model.field_names if not n.startswith(SHADOW_PREFIX)]
    if names == list(model.field_names):
        return model
    keep = [model.field_index(n) for n in names]
    cfg = LoKiFormerConfig(**{**model.config.to_dict(), "kmm_num_fields": len(names), "kmm_field_names": names})
    out = LoKiFormerForCausalLM(cfg)
    state = {}
    for k, v in model.state_dict().items():
        if is_memory_tensor(k) or k.endswith(".enabled"):
            v = v[keep]
        state[k] = v
    out.load_state_dict(state)
    return out.eval()


@contextlib.contextmanager
def capture_last_memory(model: LoKiFormerForCausalLM):
    """Record the output of the last KMM layer (B, T, d) during forward."""
    box: dict[str, torch.Tensor] = {}
    last = model.memory_modules()[max(model.memory_modules())]
    handle = last.register_forward_hook(lambda _m, _i, out: box.__setitem__("m", out))
    try:
        yield box
    finally:
        handle.remove()


def memory_readout_loss(model: LoKiFormerForCausalLM, m: torch.Tensor, targets: torch.Tensor,
                        mask: torch.Tensor) -> torch.Tensor:
    """Sum of cross-entropies of the answer read from the last memory layer's
    output alone, through the final norm and the (tied) LM head: a field's
    values must *name* the answer, so that training a field with the backbone
    frozen can write a new one."""
    if not bool(mask.any()):
        return m.new_zeros(())
    logits = model.lm_head(model.model.norm(m[mask])).float()
    return torch.nn.functional.cross_entropy(logits, targets[mask], reduction="sum")


# --------------------------------------------------------------------------- bound slots
# A field stores fact i in slot i: its key is trained to be the one the fact's
# prompt selects (a supervised retrieval loss), its value is the answer token's
# row of a *value codebook* (vocab x d_v), learned with the backbone and shipped
# next to the weights. While the backbone trains, every step states a new
# random world, so no answer can be memorised by the backbone: it must read the
# value. Writing a field is then the same operation for the shipped world, an
# edit or a new domain (``field_training``). The codebook is not part of the
# served model: a field file holds plain keys and values.

# config.kmm_value_codebook of a bound-slot model: the codebook's path in the model folder. In a
# subfolder, because vLLM loads every *.safetensors file at the top of a model folder as weights.
VALUE_CODEBOOK = "field_writer/value_codebook.safetensors"


def new_codebook(vocab: int, value_dim: int, gen: torch.Generator) -> torch.nn.Parameter:
    """(vocab, d_v) value per answer token, the memory's own init scale."""
    return torch.nn.Parameter(torch.randn(vocab, value_dim, generator=gen) * 0.02)


def save_codebook(codebook: torch.Tensor, path: str | Path) -> Path:
    from safetensors.torch import save_file

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file({"values": codebook.detach().contiguous().clone()}, str(path),
              metadata={"format": "lokiserve.value_codebook/1"})
    return Path(path)


def load_codebook(path: str | Path) -> torch.Tensor:
    from safetensors.torch import load_file

    return load_file(str(path))["values"]


def answer_token(enc: Encoder, answer: str) -> int:
    """The token a bound slot stores for an answer: its first (the backbone
    spells the rest of a longer answer from it, as in training)."""
    ids = enc.text(answer)
    if not ids:
        raise ValueError(f"empty answer {answer!r}")
    return ids[0]


def slot_answer_ids(enc: Encoder, worlds: dict[int, list], num_fields: int, slots: int) -> torch.Tensor:
    """(F, N) token id of the answer stored in each slot (-1: empty)."""
    ids = torch.full((num_fields, slots), -1, dtype=torch.long)
    for f, facts in worlds.items():
        if len(facts) > null_slot(slots):
            raise ValueError(f"{len(facts)} facts do not fit in {null_slot(slots)} slots (one stays empty)")
        ids[f, : len(facts)] = torch.tensor([answer_token(enc, x.answer) for x in facts], dtype=torch.long)
    return ids


def answer_values(codebook: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Answer token ids (-1: empty) -> their codebook rows (0 for empty; differentiable)."""
    return codebook[ids.clamp(min=0)] * (ids >= 0).unsqueeze(-1).to(codebook.dtype)


@torch.no_grad()
def write_bound_values(model: LoKiFormerForCausalLM, codebook: torch.Tensor, ids: torch.Tensor) -> None:
    """Store the answers ``ids`` (F, N) as the values of every KMM layer."""
    table = answer_values(codebook, ids)
    for mem in model.memory_modules().values():
        mem.values.copy_(table.to(mem.values.dtype))


@contextlib.contextmanager
def bound_values(model: LoKiFormerForCausalLM, table: torch.Tensor | None, capture: bool = True):
    """During one forward: the values are ``table`` (F, N, d_v, with gradient;
    None: the model's own values) and the memory queries are kept for
    ``retrieval_loss``."""
    mems = list(model.memory_modules().values())
    if table is None and not capture:
        yield
        return
    for m in mems:
        m._value_override, m._capture_queries = table, capture
    try:
        yield
    finally:
        for m in mems:
            m._value_override, m._capture_queries, m._queries = None, False, None


def null_slot(slots: int) -> int:
    """The slot kept empty in every bound-slot field (value 0): a query that is
    not about the field's facts is trained to read it, so that a field adds
    nothing to other domains' answers."""
    return slots - 1


def retrieval_loss(model: LoKiFormerForCausalLM, batch: dict) -> tuple[torch.Tensor, int]:
    """Sum over bound positions of the cross-entropy of the right slot among
    all slots of a field, for every field: the fact's slot in its own field,
    the null slot in every other field (mean over heads and KMM layers; the
    other fields weigh as much as the own one together); and the number of
    positions. Needs the queries kept by ``bound_values``."""
    st, mask = batch["slot_targets"], batch["mask"]
    pos = (st >= 0).nonzero()
    mems = list(model.memory_modules().values())
    if len(pos) == 0:
        return mems[0].keys.new_zeros(()), 0
    T = st.shape[1]
    rows = (mask.reshape(-1).long().cumsum(0) - 1)[pos[:, 0] * T + pos[:, 1]]
    own = batch["grad_fields"].float().argmax(dim=1)[pos[:, 0]]  # (P,)
    F, N = mems[0].keys.shape[:2]
    target = torch.full((len(pos), F), null_slot(N), dtype=torch.long)
    target[torch.arange(len(pos)), own] = st[pos[:, 0], pos[:, 1]]
    is_own = torch.zeros(len(pos), F, dtype=torch.bool)
    is_own[torch.arange(len(pos)), own] = True
    weight = torch.where(is_own, 1.0, 1.0 / max(1, F - 1))  # own field 1, the other fields 1 together
    total = 0.0
    for mem in mems:
        q = mem._queries[rows]  # (P, H, dk)
        scores = torch.einsum("phd,fnd->phfn", q, mem.keys) / math.sqrt(mem.key_dim)
        ce = torch.nn.functional.cross_entropy(scores.float().reshape(-1, N),
                                               target.unsqueeze(1).expand(-1, mem.heads, -1).reshape(-1),
                                               reduction="none").view(len(pos), mem.heads, F)
        total = total + (ce * weight.unsqueeze(1)).sum() / mem.heads
    return total / len(mems), len(pos)


def train_micro_batches(model, seqs, scale, special, cfg, chunks: int = 2,
                        value_ids: torch.Tensor | None = None, bound: bool = False,
                        codebook: torch.Tensor | None = None) -> torch.Tensor:
    """Forward/backward in length-sorted chunks (less padding); the loss is the
    weighted mean over the whole batch, plus ``cfg.memory_readout_weight`` x the
    memory read-out loss per answer token. ``value_ids`` (bound slots): the
    answers stored in every slot, whose ``codebook`` rows are the values
    (None: the model's own values); with it or ``bound``, plus
    ``cfg.retrieval_weight`` x the retrieval loss per bound position. Returns
    the loss (detached)."""
    bound = bound or value_ids is not None
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i].ids))
    parts = [order[j * len(order) // chunks:(j + 1) * len(order) // chunks] for j in range(chunks)]
    batches = []
    for part in parts:
        if part:
            sub = [seqs[i] for i in part]
            sc = scale[part]
            batches.append((make_batch(sub, scale.shape[1], special["pad"], special["abstain"], sc,
                                       cfg.text_weight), sc))
    total_w = sum(float(b["weights"].sum()) for b, _ in batches)
    readout = cfg.memory_readout_weight
    if readout > 0:
        answer_masks = [(b["weights"] == 1.0) & (b["targets"] != special["abstain"]) for b, _ in batches]
        n_answers = max(1, sum(int(a.sum()) for a in answer_masks))
    retrieval = cfg.retrieval_weight if bound else 0.0
    n_bound = max(1, sum(int((b["slot_targets"] >= 0).sum()) for b, _ in batches))
    total = 0.0
    for i, (b, sc) in enumerate(batches):
        capture = capture_last_memory(model) if readout > 0 else contextlib.nullcontext({})
        # bound slots: the values are rebuilt from the codebook per chunk (each backward frees its graph)
        table = answer_values(codebook, value_ids) if value_ids is not None else None
        with token_mask(model, b["mask"]), capture as box, bound_values(model, table, capture=bound):
            out = model(b["input_ids"], kmm_field_scale=sc, kmm_grad_fields=b["grad_fields"])
            ce = torch.nn.functional.cross_entropy(out.logits.reshape(-1, out.logits.shape[-1]),
                                                   b["targets"].reshape(-1), reduction="none")
            loss = (ce * b["weights"].reshape(-1)).sum() / max(total_w, 1e-6)
            if retrieval > 0:
                loss = loss + retrieval * retrieval_loss(model, b)[0] / n_bound
        if readout > 0:
            loss = loss + readout * memory_readout_loss(model, box["m"], b["targets"], answer_masks[i]) / n_answers
        loss.backward()
        total += float(loss.detach())
    return torch.tensor(total)


def build_artifacts(cfg: TrainConfig, run_dir: Path):
    """World + tokenizer (deterministic); written to run_dir/tokenizer."""
    world = build_world(cfg.seed, cfg.entities_per_domain, cfg.new_entities)
    tok_dir = run_dir / "tokenizer"
    tok = train_tokenizer(world.corpus(), cfg.vocab_size)
    tok_dir.mkdir(parents=True, exist_ok=True)
    save_hf_tokenizer(tok, tok_dir)
    return world, load_tokenizer(tok_dir)


def _rng_state(sampler: Sampler, gen: torch.Generator) -> dict:
    return {"sampler": sampler.rng.getstate(), "torch": torch.get_rng_state(), "gen": gen.get_state()}


def train_backbone(cfg: TrainConfig, run_dir: str | Path, *, resume: bool = True, progress: bool = True,
                   log=print, stop_at: int | None = None) -> tuple[LoKiFormerForCausalLM, World, object, dict]:
    """Train from scratch (or resume run_dir/checkpoint.pt). Returns the model
    with the reserve field still holding the last practice domain. ``stop_at``
    ends this run early at that step (with a checkpoint), to be resumed."""
    from lokiserve.train.evaluate import evaluate_facts

    torch.set_num_threads(cfg.threads)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    world, tok = build_artifacts(cfg, run_dir)
    special = special_ids(tok)
    torch.manual_seed(cfg.seed)
    mcfg = model_config(cfg, tok.get_vocab_size(), special, training_field_names(cfg))
    model = LoKiFormerForCausalLM(mcfg)
    names = list(mcfg.kmm_field_names)
    field_of = {n: i for i, n in enumerate(names)}
    reserve = field_of[RESERVE_FIELD]
    enc = Encoder(tok)
    sampler = Sampler(world, enc, cfg, field_of)

    def write_real_world():  # bound slots: the real world (and the practice facts as drawn) into the values
        write_bound_values(model, codebook, slot_answer_ids(enc, sampler.bound_worlds(real=True), len(names),
                                                            mcfg.kmm_slots_per_field))

    groups = param_groups(model, cfg)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    codebook = None
    if cfg.bound_slots:
        codebook = new_codebook(mcfg.vocab_size, mcfg.kmm_value_dim, torch.Generator().manual_seed(cfg.seed + 2))
        groups.append({"params": [codebook], "weight_decay": 0.0, "base_lr": cfg.memory_lr})
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), eps=1e-8)
    step, history, practice_round, shadow_round = 0, [], -1, -1
    ckpt_path = run_dir / "checkpoint.pt"
    if resume and ckpt_path.exists():
        ck = torch.load(ckpt_path, weights_only=False)
        if ck["config"] != asdict(cfg):
            raise ValueError(f"{ckpt_path} was written with another config; use a fresh --run-dir")
        model.load_state_dict(ck["model"])
        if codebook is not None:
            codebook.data.copy_(ck["codebook"])
        opt.load_state_dict(ck["optimizer"])
        step, history, practice_round = ck["step"], ck["history"], ck["practice_round"]
        shadow_round = ck.get("shadow_round", -1)
        sampler.rng.setstate(ck["rng"]["sampler"])
        torch.set_rng_state(ck["rng"]["torch"])
        gen.set_state(ck["rng"]["gen"])
        if practice_round >= 0:
            sampler.practice = practice_facts(world, practice_round, cfg.practice_entities)
        if shadow_round >= 0:
            sampler.draw_shadows(shadow_round)
        log(f"resumed from {ckpt_path} at step {step}")
    model.train()
    t0 = time.time() - (history[-1]["elapsed_s"] if history else 0.0)  # a resumed run counts its earlier time
    bar = tqdm(total=cfg.steps, initial=step, disable=not progress, desc="train-demo", dynamic_ncols=True)
    ema = None
    with fast_kmm(model):
        while step < min(cfg.steps, stop_at or cfg.steps):
            if cfg.practice_share > 0 and step // cfg.practice_every != practice_round:
                practice_round = step // cfg.practice_every
                sampler.practice = practice_facts(world, practice_round, cfg.practice_entities)
                reinit_field(model, reserve, gen, opt)
                if cfg.practice_episode_steps > 0:
                    practice_episode(model, sampler, reserve, special, cfg, practice_round, cfg.practice_episode_steps)
            if sampler.real_of_shadow and step // cfg.shadow_every != shadow_round:
                shadow_round = step // cfg.shadow_every
                copy = sampler.draw_shadows(shadow_round)
                for d, c in copy.items():
                    start_shadow(model, field_of[SHADOW_PREFIX + d], field_of[d], c, gen, opt)
            for g in opt.param_groups:
                g["lr"] = g["base_lr"] * lr_factor(step, cfg)
            value_ids = None
            if cfg.bound_slots:
                sampler.redraw()
                value_ids = slot_answer_ids(enc, sampler.bound_worlds(), len(names), mcfg.kmm_slots_per_field)
            seqs, scale = sampler.batch(cfg.batch_size, len(names), reserve)
            opt.zero_grad(set_to_none=True)
            loss = train_micro_batches(model, seqs, scale, special, cfg, value_ids=value_ids, codebook=codebook)
            gnorm = torch.nn.utils.clip_grad_norm_(
                list(model.parameters()) + ([codebook] if codebook is not None else []), cfg.grad_clip)
            opt.step()
            step += 1
            lv = float(loss.detach())
            ema = lv if ema is None else 0.95 * ema + 0.05 * lv
            bar.update(1)
            bar.set_postfix(loss=f"{ema:.3f}", gnorm=f"{float(gnorm):.2f}")
            record = {"step": step, "loss": lv, "loss_ema": ema, "elapsed_s": time.time() - t0}
            if step % cfg.eval_every == 0 or step == cfg.steps:
                model.eval()
                if cfg.bound_slots:
                    write_real_world()
                with torch.no_grad(), enabled_fields(model, list(FIELD_NAMES)):
                    acc = evaluate_facts(model, tok, [f.record() for f in world.facts], per_domain_limit=60)
                    prac = evaluate_facts(model, tok, [f.record() for f in sampler.practice]) if sampler.practice else None
                record["eval"] = {d: r["accuracy"] for d, r in acc["domains"].items()}
                if prac:
                    record["eval"]["practice"] = prac["overall"]["accuracy"]
                for d, facts in sampler.shadow.items():  # the shadow read in place of the real field
                    fields_on = [n for n in FIELD_NAMES if n != d] + [SHADOW_PREFIX + d]
                    changed = [f.record() for f in facts if f.changed]
                    with torch.no_grad(), enabled_fields(model, fields_on):
                        sh = evaluate_facts(model, tok, changed[:60]) if changed else None
                    if sh:
                        record["eval"][SHADOW_PREFIX + d] = sh["overall"]["accuracy"]
                model.train()
                log(f"step {step}: loss {ema:.3f} eval {record['eval']}")
            history.append(record)
            if step % cfg.ckpt_every == 0 or step == cfg.steps or step == stop_at:
                tmp = ckpt_path.with_suffix(".tmp")
                torch.save({"config": asdict(cfg), "model": model.state_dict(), "optimizer": opt.state_dict(),
                            "step": step, "history": history, "practice_round": practice_round,
                            "shadow_round": shadow_round, "codebook": None if codebook is None else codebook.detach(),
                            "rng": _rng_state(sampler, gen)}, tmp)
                tmp.replace(ckpt_path)
    bar.close()
    model.eval()
    if cfg.bound_slots:
        write_real_world()
        model.config.kmm_value_codebook = VALUE_CODEBOOK
    model = shipped_model(model)
    return model, world, tok, {"history": history, "train_seconds": time.time() - t0,
                               "value_codebook": None if codebook is None else codebook.detach()}


def save_demo(model: LoKiFormerForCausalLM, world: World, run_dir: str | Path, out_dir: str | Path,
              codebook: torch.Tensor | None = None) -> Path:
    """memories/demo: config, safetensors weights (reserve field zeroed), tokenizer, world.jsonl
    (and the value codebook of a bound-slot model)."""
    from transformers import GenerationConfig

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.zero_field(RESERVE_FIELD)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    gc = GenerationConfig(bos_token_id=model.config.bos_token_id, eos_token_id=model.config.eos_token_id,
                          pad_token_id=model.config.pad_token_id, do_sample=False)
    gc.save_pretrained(str(out_dir))
    from transformers import PreTrainedTokenizerFast

    PreTrainedTokenizerFast.from_pretrained(str(Path(run_dir) / "tokenizer")).save_pretrained(str(out_dir))
    write_facts(world.facts, out_dir / "world.jsonl")
    if codebook is not None:
        save_codebook(codebook, out_dir / VALUE_CODEBOOK)
    return out_dir


def load_model(model_dir: str | Path) -> LoKiFormerForCausalLM:
    model = LoKiFormerForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    return model.eval()


__all__ = ["TrainConfig", "train_backbone", "save_demo", "load_model", "model_config", "reinit_field"]
