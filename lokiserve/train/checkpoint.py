"""What a training run reads and writes: the world and tokenizer it builds,
resumable checkpoints, the shipped model folder, and loading a model back."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from lokiserve.model import LoKiFormerForCausalLM
from lokiserve.train.bound_slots import VALUE_CODEBOOK, save_codebook
from lokiserve.train.config import TrainConfig
from lokiserve.train.tokenizer import load_tokenizer, save_hf_tokenizer, train_tokenizer
from lokiserve.train.world import RESERVE_FIELD, World, build_world, write_facts


# The demo is a plain language model of facts, not a chat model: a chat is its
# messages' text after <s>, so /v1/chat/completions asks what /v1/completions does.
DEMO_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] != 'system' %}"
    "{{ message['content'] }}{% if not loop.last %} {% endif %}{% endif %}{% endfor %}"
)


def build_artifacts(cfg: TrainConfig, run_dir: Path):
    """World + tokenizer (deterministic); the tokenizer is written to run_dir/tokenizer."""
    world = build_world(cfg.seed, cfg.entities_per_domain, cfg.new_entities)
    tok_dir = run_dir / "tokenizer"
    tok = train_tokenizer(world.corpus(), cfg.vocab_size)
    tok_dir.mkdir(parents=True, exist_ok=True)
    save_hf_tokenizer(tok, tok_dir)
    return world, load_tokenizer(tok_dir)


def save_checkpoint(path: Path, cfg: TrainConfig, model, codebook: torch.Tensor, optimizer, *, step: int,
                    history: list, practice_round: int, rng: dict, projection: torch.Tensor | None = None) -> None:
    """Everything a resumed run needs to continue bit for bit (temp file, then rename)."""
    tmp = path.with_suffix(".tmp")
    state = {"config": asdict(cfg), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "step": step, "history": history, "practice_round": practice_round,
             "codebook": codebook.detach(), "rng": rng}
    if projection is not None:
        state["codebook_projection"] = projection.detach()
    torch.save(state, tmp)
    tmp.replace(path)


def load_checkpoint(path: Path, cfg: TrainConfig) -> dict:
    ck = torch.load(path, weights_only=False)
    if ck["config"] != asdict(cfg):
        raise ValueError(f"{path} was written with another config; use a fresh --run-dir")
    return ck


def save_demo(model: LoKiFormerForCausalLM, world: World, run_dir: str | Path, out_dir: str | Path,
              codebook: torch.Tensor | None = None) -> Path:
    """memories/demo: config, safetensors weights (reserve field zeroed), tokenizer
    (with ``DEMO_CHAT_TEMPLATE``), world.jsonl and the value codebook."""
    from transformers import GenerationConfig, PreTrainedTokenizerFast

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.zero_field(RESERVE_FIELD)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    gc = GenerationConfig(bos_token_id=model.config.bos_token_id, eos_token_id=model.config.eos_token_id,
                          pad_token_id=model.config.pad_token_id, do_sample=False)
    gc.save_pretrained(str(out_dir))
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(Path(run_dir) / "tokenizer"))
    tokenizer.chat_template = DEMO_CHAT_TEMPLATE
    tokenizer.save_pretrained(str(out_dir))
    write_facts(world.facts, out_dir / "world.jsonl")
    if codebook is not None:
        save_codebook(codebook, out_dir / (model.config.kmm_value_codebook or VALUE_CODEBOOK))
    return out_dir


def load_model(model_dir: str | Path) -> LoKiFormerForCausalLM:
    """A LoKiFormer folder as a float32 reference model in eval mode."""
    model = LoKiFormerForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    return model.eval()


__all__ = ["build_artifacts", "save_checkpoint", "load_checkpoint", "save_demo", "load_model"]
