"""Does LoKiFormer pretrain faster than a plain transformer of the same size?

The LoKiFormer paper reports 1.33x faster convergence. This script measures
the same metric here: LoKiFormer and a parameter-matched Llama baseline (no
LFA, no KMM; its MLP width adjusted until the parameter counts agree within
2%) are trained by the *same* loop on the *same* token stream (the synthetic
knowledge world's corpus: facts in many phrasings plus connective text), same
seed, optimiser and schedule. It reports both validation-loss curves (PNG),
the baseline's final validation loss, and how many steps LoKiFormer needs to
reach it: ``steps ratio = baseline steps / LoKiFormer steps`` (> 1 means
LoKiFormer converges faster). Whatever ratio comes out is what is recorded.

    python bench/convergence.py                 # defaults: 1 seed, 600 steps, ~10-20 min on 2 CPU cores
    python bench/convergence.py --seeds 0 1 2    # more seeds when time allows
    python bench/convergence.py --smoke         # < 1 minute, writes to a temp dir
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lokiserve.model import LoKiFormerConfig, LoKiFormerForCausalLM  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds, one run pair each (default: 0; add more when time allows)")
    p.add_argument("--steps", type=int, default=600, help="optimiser steps per model (default: 600)")
    p.add_argument("--batch-size", type=int, default=32, help="sequences per step (default: 32)")
    p.add_argument("--seq-len", type=int, default=64, help="tokens per sequence (default: 64)")
    p.add_argument("--hidden", type=int, default=128, help="LoKiFormer hidden size (default: 128)")
    p.add_argument("--layers", type=int, default=4, help="layers of both models (default: 4)")
    p.add_argument("--vocab", type=int, default=1024, help="BPE vocabulary trained on the world corpus (default: 1024)")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate, both models (default: 3e-3)")
    p.add_argument("--warmup", type=int, default=100, help="linear warmup steps (default: 100)")
    p.add_argument("--eval-every", type=int, default=50, help="steps between validation-loss evaluations (default: 50)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results", help="results folder (default: bench/results)")
    p.add_argument("--smoke", action="store_true", help="tiny run in under a minute, written to a temp dir unless --out is given")
    args = p.parse_args(argv)
    if args.smoke:
        args.seeds, args.steps, args.batch_size, args.seq_len = [0], 40, 8, 32
        args.hidden, args.layers, args.vocab, args.warmup, args.eval_every = 64, 2, 300, 5, 10
        if "--out" not in (argv or sys.argv):
            args.out = Path(tempfile.mkdtemp(prefix="convergence-smoke-"))
    return args


# --------------------------------------------------------------------------- data


def token_stream(vocab: int, seed: int = 0) -> torch.Tensor:
    """The knowledge world's corpus, BPE-tokenised, as one long stream."""
    from lokiserve.train.tokenizer import train_tokenizer
    from lokiserve.train.world import build_world

    texts = list(build_world(seed=seed).corpus())
    random.Random(seed).shuffle(texts)
    tok = train_tokenizer(texts, vocab_size=vocab)
    ids: list[int] = []
    for text in texts:
        ids.extend(tok.encode(text).ids)
    return torch.tensor(ids, dtype=torch.long)


def windows(stream: torch.Tensor, n: int, seq_len: int, gen: torch.Generator) -> torch.Tensor:
    starts = torch.randint(0, len(stream) - seq_len - 1, (n,), generator=gen)
    return torch.stack([stream[s : s + seq_len] for s in starts.tolist()])


# --------------------------------------------------------------------------- models


def lokiformer(args, vocab: int) -> LoKiFormerForCausalLM:
    heads = max(1, args.hidden // 64)
    cfg = LoKiFormerConfig(
        vocab_size=vocab, hidden_size=args.hidden, num_hidden_layers=args.layers,
        num_attention_heads=heads, num_key_value_heads=heads, head_dim=args.hidden // heads,
        intermediate_size=args.hidden * 3, kv_latent_dim=args.hidden // 2,
        kmm_layers=list(range(1, args.layers, 2)), kmm_num_fields=4, kmm_slots_per_field=128,
        kmm_key_dim=32, kmm_value_dim=32, kmm_heads=4, kmm_topk=4,
        kmm_field_names=["f0", "f1", "f2", "f3"], max_position_embeddings=args.seq_len,
    )
    return LoKiFormerForCausalLM(cfg)


def baseline(args, vocab: int, target_params: int):
    """Llama (no LFA, no KMM), MLP width searched to match ``target_params``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    heads = max(1, args.hidden // 64)

    def build(intermediate: int):
        cfg = LlamaConfig(
            vocab_size=vocab, hidden_size=args.hidden, num_hidden_layers=args.layers,
            num_attention_heads=heads, num_key_value_heads=heads, head_dim=args.hidden // heads,
            intermediate_size=intermediate, max_position_embeddings=args.seq_len, tie_word_embeddings=True,
        )
        return LlamaForCausalLM(cfg)

    per_unit = 3 * args.hidden * args.layers  # params per unit of intermediate size
    fixed = count(build(1)) - per_unit
    intermediate = max(1, round((target_params - fixed) / per_unit))
    return build(intermediate), intermediate


def count(model) -> int:
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------- the one trainer


def lr_at(step: int, args) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def lm_loss(model, batch: torch.Tensor) -> torch.Tensor:
    logits = model(input_ids=batch).logits[:, :-1]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), batch[:, 1:].reshape(-1))


def train(model, stream, val, args, seed: int, label: str) -> list[dict]:
    """AdamW, warmup + cosine, clip 1.0; identical batches for every model of a seed."""
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    gen = torch.Generator().manual_seed(1000 + seed)
    curve = []
    model.train()
    from tqdm import tqdm

    for step in tqdm(range(args.steps), desc=f"{label} seed {seed}", leave=False, disable=not sys.stderr.isatty()):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args)
        loss = lm_loss(model, windows(stream, args.batch_size, args.seq_len, gen))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            model.eval()
            with torch.no_grad():
                v = sum(lm_loss(model, chunk).item() for chunk in val.split(32)) / len(val.split(32))
            model.train()
            curve.append({"step": step + 1, "train_loss": loss.item(), "val_loss": v})
    return curve


def steps_to_reach(curve: list[dict], target: float) -> float | None:
    """First step at which the validation loss is <= target (linear interpolation)."""
    prev = None
    for point in curve:
        if point["val_loss"] <= target:
            if prev is None:
                return float(point["step"])
            frac = (prev["val_loss"] - target) / (prev["val_loss"] - point["val_loss"])
            return prev["step"] + frac * (point["step"] - prev["step"])
        prev = point
    return None


# --------------------------------------------------------------------------- report


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in results:
        for key, style in (("lokiformer", "-"), ("baseline", "--")):
            c = r[key]["curve"]
            ax.plot([p["step"] for p in c], [p["val_loss"] for p in c], style, label=f"{key} (seed {r['seed']})")
        ax.axhline(r["baseline_final_val_loss"], color="grey", lw=0.6)
    ax.set_xlabel("step")
    ax.set_ylabel("validation loss")
    ax.set_title("LoKiFormer vs parameter-matched Llama, same trainer and data")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    stream = token_stream(args.vocab)
    vocab = int(stream.max()) + 1
    val = windows(stream, 128 if not args.smoke else 32, args.seq_len, torch.Generator().manual_seed(99))
    results = []
    for seed in args.seeds:
        torch.manual_seed(seed)
        lk = lokiformer(args, vocab)
        torch.manual_seed(seed)
        base, intermediate = baseline(args, vocab, count(lk))
        n_lk, n_base = count(lk), count(base)
        assert abs(n_base - n_lk) / n_lk <= 0.02, (n_lk, n_base)
        t = time.time()
        lk_curve = train(lk, stream, val, args, seed, "lokiformer")
        lk_s = time.time() - t
        t = time.time()
        base_curve = train(base, stream, val, args, seed, "baseline")
        base_s = time.time() - t
        target = base_curve[-1]["val_loss"]
        reach = steps_to_reach(lk_curve, target)
        results.append({
            "seed": seed,
            "lokiformer": {"params": n_lk, "curve": lk_curve, "seconds": round(lk_s, 1)},
            "baseline": {"params": n_base, "intermediate_size": intermediate, "curve": base_curve, "seconds": round(base_s, 1)},
            "baseline_final_val_loss": target,
            "lokiformer_final_val_loss": lk_curve[-1]["val_loss"],
            "lokiformer_steps_to_baseline_final": reach,
            "steps_ratio": (args.steps / reach) if reach else None,
        })
        print(f"seed {seed}: params {n_lk} vs {n_base}; baseline final val {target:.4f}; "
              f"LoKiFormer final {lk_curve[-1]['val_loss']:.4f}; reaches baseline at step {reach}; "
              f"ratio {results[-1]['steps_ratio']}", flush=True)
    ratios = [r["steps_ratio"] for r in results if r["steps_ratio"]]
    args.out.mkdir(parents=True, exist_ok=True)
    record = {
        "command": "python bench/convergence.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "threads": args.threads},
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "data": {"tokens": len(stream), "vocab": vocab, "source": "lokiserve.train.world corpus (seed 0)"},
        "results": results,
        "mean_steps_ratio": sum(ratios) / len(ratios) if ratios else None,
        "seeds_where_lokiformer_never_reached_baseline": [r["seed"] for r in results if not r["steps_ratio"]],
        "paper_claim": 1.33,
        "wall_seconds": round(time.time() - t0, 1),
    }
    (args.out / "convergence-cpu.json").write_text(json.dumps(record, indent=2) + "\n")
    plot(results, args.out / "convergence-cpu.png")
    rows = "\n".join(
        f"| {r['seed']} | {r['lokiformer']['params']:,} | {r['baseline']['params']:,} | {r['baseline_final_val_loss']:.4f} "
        f"| {r['lokiformer_final_val_loss']:.4f} | {r['lokiformer_steps_to_baseline_final'] or 'never'} | "
        f"{('%.2fx' % r['steps_ratio']) if r['steps_ratio'] else '-'} |"
        for r in results
    )
    (args.out / "convergence-cpu.md").write_text(
        f"Command: `{record['command']}` ({record['wall_seconds']} s)\n\n"
        "| seed | LoKiFormer params | baseline params | baseline final val loss | LoKiFormer final val loss "
        "| LoKiFormer steps to baseline final | steps ratio |\n|---|---|---|---|---|---|---|\n" + rows + "\n"
    )
    print(f"mean steps ratio: {record['mean_steps_ratio']} (paper: 1.33); wrote {args.out}/convergence-cpu.*")
    return 0


if __name__ == "__main__":
    sys.exit(main())
