"""What does the knowledge memory cost per decode step? (no vLLM needed)

One decode step of the reference LoKiFormer (a prefilled cache of
``--context`` tokens, one new token per sequence) at several batch sizes, for
three variants measured side by side in one run:

* ``kmm_triton``    — KMM retrieval through the fused Triton kernel (CUDA only);
* ``kmm_reference`` — KMM retrieval through the PyTorch reference;
* ``no_kmm``        — the same dimensions with the KMM term removed.

Reports step times and the ratios against ``no_kmm``; writes
``bench/results/decode_step-<device>.json`` (+ ``.md``). On CUDA it uses
``torch.compile`` for the backbone when ``--compile`` is given.

    python bench/decode_step.py                # GPU shapes on CUDA, small shapes on CPU
    python bench/decode_step.py --smoke        # < 1 minute anywhere, temp output
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lokiserve.model import KnowledgeMemory, LoKiFormerCache, LoKiFormerConfig, LoKiFormerForCausalLM  # noqa: E402

GPU_SHAPE = dict(hidden_size=1024, num_hidden_layers=8, num_attention_heads=16, num_key_value_heads=4, head_dim=64,
                 intermediate_size=2816, kv_latent_dim=256, kmm_layers=[3, 7], kmm_num_fields=4,
                 kmm_slots_per_field=65536, kmm_key_dim=128, kmm_value_dim=256, kmm_heads=8, kmm_topk=32)
CPU_SHAPE = dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, head_dim=64,
                 intermediate_size=704, kv_latent_dim=128, kmm_layers=[1, 3], kmm_num_fields=4,
                 kmm_slots_per_field=4096, kmm_key_dim=128, kmm_value_dim=256, kmm_heads=8, kmm_topk=32)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=None, help="batch sizes (default: 1 16 64 256 on CUDA, 1 16 64 on CPU)")
    p.add_argument("--context", type=int, default=128, help="tokens already in the cache (default: 128)")
    p.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"], help="default: bfloat16 on CUDA, float32 on CPU")
    p.add_argument("--repeats", type=int, default=20, help="timed steps per point (default: 20)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (CUDA)")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results", help="results folder (default: bench/results)")
    p.add_argument("--smoke", action="store_true", help="tiny shapes, under a minute; temp output unless --out is given")
    args = p.parse_args(argv)
    args.device = "cuda" if torch.cuda.is_available() else "cpu"
    args.dtype = args.dtype or ("bfloat16" if args.device == "cuda" else "float32")
    args.shape = dict(GPU_SHAPE if args.device == "cuda" else CPU_SHAPE)
    args.batch_sizes = args.batch_sizes or ([1, 16, 64, 256] if args.device == "cuda" else [1, 16, 64])
    if args.smoke:
        args.shape.update(hidden_size=128, num_attention_heads=2, num_key_value_heads=2, intermediate_size=256,
                          kv_latent_dim=64, kmm_slots_per_field=512, kmm_key_dim=32, kmm_value_dim=32, kmm_heads=2,
                          kmm_topk=8, num_hidden_layers=2, kmm_layers=[1])
        args.batch_sizes, args.context, args.repeats = [1, 4], 16, 3
        if "--out" not in (argv if argv is not None else sys.argv):
            args.out = Path(tempfile.mkdtemp(prefix="decode-step-smoke-"))
    return args


def build(args, kmm: bool) -> LoKiFormerForCausalLM:
    shape = dict(args.shape)
    if not kmm:
        shape["kmm_layers"] = []
    torch.manual_seed(0)
    cfg = LoKiFormerConfig(vocab_size=4096, max_position_embeddings=args.context + 8,
                           kmm_field_names=[f"f{i}" for i in range(shape["kmm_num_fields"])], **shape)
    return LoKiFormerForCausalLM(cfg).to(args.device, getattr(torch, args.dtype)).eval()


def triton_forward(self: KnowledgeMemory, c, field_scale=None, grad_fields=None):
    """KMM forward through the fused kernel (inference only)."""
    from lokiserve.kernels import kmm_decode_triton

    B, T, _ = c.shape
    q = self.query(c).view(B * T, self.heads, self.key_dim)
    r = kmm_decode_triton(q, self.keys, self.values, self.enabled, self.topk)
    return self.out(r.reshape(B, T, self.heads * self.value_dim))


def prefill(model, ids: torch.Tensor, score_budget: int = 1 << 28) -> LoKiFormerCache:
    """Fill the cache a few sequences at a time: the reference KMM scores every
    slot of every prompt token at once, which would not fit for big batches."""
    from lokiserve.model import LayerState

    cfg = model.config
    per_seq = ids.shape[1] * cfg.kmm_heads * cfg.kmm_num_fields * cfg.kmm_slots_per_field if cfg.kmm_layers else 1
    step = max(1, score_budget // per_seq)
    parts = []
    for chunk in ids.split(step):
        part = LoKiFormerCache(cfg.num_hidden_layers)
        model(chunk, past_key_values=part, use_cache=True)
        parts.append(part)
    cache = LoKiFormerCache(cfg.num_hidden_layers)
    cache.layers = [
        LayerState(*(torch.cat([getattr(p.layers[i], f) for p in parts]) for f in ("k", "v", "conv")))
        for i in range(cfg.num_hidden_layers)
    ]
    cache.mask = torch.cat([p.mask for p in parts])
    return cache


def time_step(model, args, batch: int) -> float:
    """Median seconds of one decode step after a prefill of ``args.context`` tokens."""
    ids = torch.randint(0, 4096, (batch, args.context), device=args.device)
    with torch.no_grad():
        cache = prefill(model, ids)
        saved, saved_mask = list(cache.layers), cache.mask
        step = torch.randint(0, 4096, (batch, 1), device=args.device)
        fn = torch.compile(model) if args.compile else model

        def one():
            cache.layers, cache.mask = list(saved), saved_mask
            return fn(step, past_key_values=cache, use_cache=True).logits

        for _ in range(3):
            one()
        if args.device == "cuda":
            import triton.testing

            return triton.testing.do_bench(one, warmup=5, rep=max(20, args.repeats)) / 1e3
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            one()
            times.append(time.perf_counter() - t)
        return statistics.median(times)


def main(argv=None) -> int:
    args = parse_args(argv)
    variants = {"no_kmm": build(args, kmm=False), "kmm_reference": build(args, kmm=True)}
    if args.device == "cuda":
        variants["kmm_triton"] = build(args, kmm=True)
        for mem in variants["kmm_triton"].memory_modules().values():
            mem.forward = triton_forward.__get__(mem)
    rows = []
    for batch in args.batch_sizes:
        row = {"batch": batch}
        for name, model in variants.items():
            try:
                row[f"{name}_ms"] = round(time_step(model, args, batch) * 1e3, 4)
            except torch.OutOfMemoryError:
                row[f"{name}_ms"] = None
                torch.cuda.empty_cache()
        base = row["no_kmm_ms"]
        for name in variants:
            if name != "no_kmm" and row.get(f"{name}_ms") and base:
                row[f"{name}_vs_no_kmm"] = round(row[f"{name}_ms"] / base, 3)
        if row.get("kmm_triton_ms") and row.get("kmm_reference_ms"):
            row["triton_speedup_vs_reference"] = round(row["kmm_reference_ms"] / row["kmm_triton_ms"], 2)
        rows.append(row)
        print(row, flush=True)
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else (platform.processor() or "cpu")
    tag = "cuda-" + device_name.replace(" ", "_") if args.device == "cuda" else "cpu"
    record = {
        "command": "python bench/decode_step.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "device": device_name, "dtype": args.dtype, "context": args.context, "shape": args.shape,
        "torch": torch.__version__, "rows": rows,
        "note": "kmm_triton needs CUDA; on CPU only the reference and no-KMM variants are timed",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"decode_step-{tag}.json").write_text(json.dumps(record, indent=2) + "\n")
    names = [n for n in ("no_kmm", "kmm_reference", "kmm_triton") if n in variants]
    header = "| batch | " + " | ".join(f"{n} ms" for n in names) + " | reference / no_kmm | triton / no_kmm |\n"
    header += "|---" * (len(names) + 3) + "|\n"
    body = "".join(
        f"| {r['batch']} | " + " | ".join(str(r.get(f'{n}_ms')) for n in names)
        + f" | {r.get('kmm_reference_vs_no_kmm', '-')} | {r.get('kmm_triton_vs_no_kmm', '-')} |\n" for r in rows
    )
    (args.out / f"decode_step-{tag}.md").write_text(f"Command: `{record['command']}` on {device_name} ({args.dtype})\n\n" + header + body)
    print(f"wrote {args.out}/decode_step-{tag}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
