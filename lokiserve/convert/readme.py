"""The README.md written into a converted model: where it came from (origin,
sha256 of every source file), its licence, what the conversion guarantees,
and the measured read-path comparison, so a model folder explains itself."""

from __future__ import annotations

from datetime import datetime, timezone

from lokiserve.convert.source import SourceInfo
from lokiserve.model import LoKiFormerConfig

LICENSE_NAMES = {"apache-2.0": "Apache-2.0", "mit": "MIT", "llama2": "Llama 2 Community License",
                 "llama3": "Llama 3 Community License"}


def licence_name(raw: str | None) -> str | None:
    return None if raw is None else LICENSE_NAMES.get(raw.lower(), raw)


def render_readme(info: SourceInfo, config: LoKiFormerConfig, report: dict, parity: dict, command: str) -> str:
    licence = licence_name(info.license)
    g = config.memory_geometry
    lines = [
        "---",
        f"license: {(info.license or 'unknown').lower()}",
        "tags: [lokiformer, lokiserve, converted]",
        "---",
        "",
        f"# LoKiFormer converted from `{info.path.name}`",
        "",
        f"Converted by `{command}` on {datetime.now(timezone.utc).strftime('%Y-%m-%d')}.",
        "",
        "## Source",
        "",
        f"- origin: {info.origin}",
        f"- format: {'GGUF (de-quantized to float32 by transformers)' if info.kind == 'gguf' else 'Hugging Face directory'}",
        *[f"- sha256 of `{name}`: `{digest}`" for name, digest in sorted(info.checksums.items())],
        "",
        "## Licence",
        "",
        (f"{licence}, the licence of the source model; this converted model is a derivative of it and "
         "is distributed under the same terms." if licence else
         "The source declared no licence: check the source's terms before redistributing."),
        "",
        "## What the conversion guarantees",
        "",
        "The output equals the source's: LFA gate 0, the KV latent an exact factorisation "
        "(`W_dkv = [W_k; W_v]`, `W_uk = [I 0]`, `W_uv = [0 I]`), and every memory field empty and "
        "disabled, so the memory term is exactly 0.",
        f"Checked before writing: max |logit difference| {parity['max_abs_diff']:.3g} on "
        f"{parity['prompts']} prompts ({parity['status']}).",
        "",
        "## Memory",
        "",
        f"- fields: {', '.join(config.kmm_field_names)} ({g.slots} slots each, all empty)",
        f"- KMM layers: {list(g.layers)}; heads {g.heads}, key dim {g.key_dim}, value dim {g.value_dim}, top-k {g.topk}",
        f"- read path: W_mq = `{report['chosen']['query']}`, W_mo = `{report['chosen']['output']}` "
        "(principal directions of this model's own activations on generated text; "
        "see `lokiserve/convert/readpath.py`). Measured on this model:",
        "",
        "| W_mq init | latent variance captured | fact retrieval@1 |",
        "|---|---|---|",
        *[f"| {k} | {v.get('latent_variance', '-')} | {v.get('fact_retrieval', v.get('skipped', '-'))} |"
          for k, v in report["query"].items()],
        "",
        "| W_mo init | attention-output variance captured |",
        "|---|---|",
        *[f"| {k} | {v['attn_output_variance']} |" for k, v in report["output"].items()],
        "",
        "W_mq and W_mo are part of the backbone hash: fields are written against them.",
        "",
    ]
    return "\n".join(lines)


__all__ = ["render_readme", "licence_name"]
