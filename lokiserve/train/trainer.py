"""Train the demo LoKiFormer on the synthetic world, with bound slots.

The scheme (memories/demo/README.md says why each part exists):

* fact *i* of a domain lives in slot *i* of its field; a slot's value is the
  answer token's row of a learned value codebook (``bound_slots``), and every
  step states a new random world, so the backbone must decode what it reads;
* a retrieval loss makes each fact's prompt read its own slot in its own field
  and the empty null slot in every other field (``bound_slots.retrieval_loss``);
* a sequence's memory gradient reaches only its own field, other fields are
  dropped at random, and with p = ``zero_own`` its own field is zeroed and the
  answer must be ``<abstain>`` (``sampler``): zeroing a field removes its domain;
* the reserve field holds a *practice* domain (fresh entities) re-drawn every
  ``practice_every`` steps, so that a field of unseen entities is a trained
  case; it is zeroed before the model is saved.

AdamW, linear warmup + cosine decay, gradient clipping, tqdm, periodic eval,
resumable checkpoints (model, codebook, optimizer, step, RNG states),
deterministic from the seed on a given machine and thread count.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from lokiserve.model import LoKiFormerForCausalLM, is_memory_tensor
from lokiserve.train.bound_slots import new_codebook, slot_answer_ids, VALUE_CODEBOOK, write_bound_values
from lokiserve.train.checkpoint import build_artifacts, load_checkpoint, save_checkpoint
from lokiserve.train.config import TrainConfig, model_config
from lokiserve.train.data import Encoder
from lokiserve.train.evaluate import evaluate_facts
from lokiserve.train.field_ops import reinit_field
from lokiserve.train.sampler import Sampler
from lokiserve.train.step import train_micro_batches
from lokiserve.train.tokenizer import special_ids
from lokiserve.train.world import FIELD_NAMES, RESERVE_FIELD, World, practice_facts


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Linear warmup, then cosine decay to ``min_lr_ratio``."""
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def param_groups(model: LoKiFormerForCausalLM, cfg: TrainConfig) -> list[dict]:
    """Decay for 2-D backbone weights, none for norms/gates/embeddings, the memory's own lr."""
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


def train_backbone(cfg: TrainConfig, run_dir: str | Path, *, resume: bool = True, progress: bool = True,
                   log=print, stop_at: int | None = None) -> tuple[LoKiFormerForCausalLM, World, object, dict]:
    """Train from scratch (or resume run_dir/checkpoint.pt). Returns the model
    with the real world in its fields (the reserve still holding the last
    practice domain), the world, the tokenizer and ``{history, train_seconds,
    value_codebook}``. ``stop_at`` ends this run early at that step (with a
    checkpoint), to be resumed."""
    torch.set_num_threads(cfg.threads)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    world, tok = build_artifacts(cfg, run_dir)
    special = special_ids(tok)
    torch.manual_seed(cfg.seed)
    mcfg = model_config(cfg, tok.get_vocab_size(), special)
    model = LoKiFormerForCausalLM(mcfg)
    names = list(mcfg.kmm_field_names)
    field_of = {n: i for i, n in enumerate(names)}
    reserve = field_of[RESERVE_FIELD]
    enc = Encoder(tok)
    sampler = Sampler(world, enc, cfg, field_of)
    slots = mcfg.kmm_slots_per_field

    groups = param_groups(model, cfg)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    codebook = new_codebook(mcfg.vocab_size, mcfg.kmm_value_dim, torch.Generator().manual_seed(cfg.seed + 2),
                            cfg.answer_tokens)
    # codebook_from_embeddings: chunk j of token t's value = free row + proj[j] @ embedding[t]
    proj = None
    if cfg.codebook_from_embeddings and codebook.ndim == 3:
        d = mcfg.hidden_size
        proj = torch.nn.Parameter(torch.randn(codebook.shape[0], codebook.shape[2], d,
                                              generator=torch.Generator().manual_seed(cfg.seed + 3)) / d ** 0.5)
    trained = [codebook] + ([proj] if proj is not None else [])
    groups.append({"params": trained, "weight_decay": 0.0, "base_lr": cfg.memory_lr})
    embed = model.get_input_embeddings().weight

    def book() -> torch.Tensor:
        if proj is None:
            return codebook
        return codebook + torch.einsum("vd,jcd->jvc", embed, proj)
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), eps=1e-8)

    step, history, practice_round = 0, [], -1
    ckpt_path = run_dir / "checkpoint.pt"
    if resume and ckpt_path.exists():
        ck = load_checkpoint(ckpt_path, cfg)
        model.load_state_dict(ck["model"])
        codebook.data.copy_(ck["codebook"])
        if proj is not None:
            proj.data.copy_(ck["codebook_projection"])
        opt.load_state_dict(ck["optimizer"])
        step, history, practice_round = ck["step"], ck["history"], ck["practice_round"]
        sampler.rng.setstate(ck["rng"]["sampler"])
        torch.set_rng_state(ck["rng"]["torch"])
        gen.set_state(ck["rng"]["gen"])
        if practice_round >= 0:
            sampler.practice = practice_facts(world, practice_round, cfg.practice_entities)
        log(f"resumed from {ckpt_path} at step {step}")

    def write_real_world():  # the real world (and the practice facts as drawn) into the values
        write_bound_values(model, book().detach(), slot_answer_ids(enc, sampler.bound_worlds(real=True), len(names), slots,
                                                             cfg.answer_tokens))

    model.train()
    t0 = time.time() - (history[-1]["elapsed_s"] if history else 0.0)  # a resumed run counts its earlier time
    bar = tqdm(total=cfg.steps, initial=step, disable=not progress, desc="train-demo", dynamic_ncols=True)
    ema = None
    while step < min(cfg.steps, stop_at or cfg.steps):
        next_round = step // cfg.practice_every
        if cfg.whole_practice_rounds and practice_round >= 0 and (next_round + 1) * cfg.practice_every > cfg.steps:
            next_round = practice_round  # too close to the end for a whole round: the current one runs on
        if cfg.practice_share > 0 and next_round != practice_round:
            practice_round = next_round
            sampler.practice = practice_facts(world, practice_round, cfg.practice_entities)
            reinit_field(model, reserve, gen, opt)
        for g in opt.param_groups:
            g["lr"] = g["base_lr"] * lr_factor(step, cfg)
        sampler.redraw()
        value_ids = slot_answer_ids(enc, sampler.bound_worlds(), len(names), slots, cfg.answer_tokens)
        seqs, scale = sampler.batch(cfg.batch_size, len(names), reserve)
        opt.zero_grad(set_to_none=True)
        loss = train_micro_batches(model, seqs, scale, special, cfg, value_ids=value_ids, codebook=book)
        gnorm = torch.nn.utils.clip_grad_norm_(list(model.parameters()) + trained, cfg.grad_clip)
        opt.step()
        step += 1
        lv = float(loss.detach())
        ema = lv if ema is None else 0.95 * ema + 0.05 * lv
        bar.update(1)
        bar.set_postfix(loss=f"{ema:.3f}", gnorm=f"{float(gnorm):.2f}")
        record = {"step": step, "loss": lv, "loss_ema": ema, "elapsed_s": time.time() - t0}
        if step % cfg.eval_every == 0 or step == cfg.steps:
            model.eval()
            write_real_world()
            with torch.no_grad(), model.field_memory.enabled_only(FIELD_NAMES):
                acc = evaluate_facts(model, tok, [f.record() for f in world.facts], per_domain_limit=60)
                prac = evaluate_facts(model, tok, [f.record() for f in sampler.practice]) if sampler.practice else None
            record["eval"] = {d: r["accuracy"] for d, r in acc["domains"].items()}
            if prac:
                record["eval"]["practice"] = prac["overall"]["accuracy"]
            model.train()
            log(f"step {step}: loss {ema:.3f} eval {record['eval']}")
        history.append(record)
        if step % cfg.ckpt_every == 0 or step == cfg.steps or step == stop_at:
            save_checkpoint(ckpt_path, cfg, model, codebook, opt, step=step, history=history, projection=proj,
                            practice_round=practice_round,
                            rng={"sampler": sampler.rng.getstate(), "torch": torch.get_rng_state(),
                                 "gen": gen.get_state()})
    bar.close()
    model.eval()
    write_real_world()
    model.config.kmm_value_codebook = VALUE_CODEBOOK
    return model, world, tok, {"history": history, "train_seconds": time.time() - t0,
                               "value_codebook": book().detach()}


__all__ = ["TrainConfig", "train_backbone", "lr_factor", "param_groups"]
