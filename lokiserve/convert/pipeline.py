"""``convert``: a Llama-family source -> a LoKiFormer folder with an attached,
empty memory whose outputs equal the source's.

Order matters for failing fast and leaving nothing behind: the output path,
options, source files and config, and memory geometry are all checked before
any weight is loaded; the folder is written to a temp dir beside OUT, checked
against the source (loaded back with ``from_pretrained``, logits compared),
and only then renamed to OUT.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import torch

from lokiserve import __version__
from lokiserve.convert.calibration import calibration_texts
from lokiserve.convert.errors import ConvertError
from lokiserve.convert.layout import MemoryLayout
from lokiserve.convert.output import check_output, staged_dir
from lokiserve.convert.parity import FLOAT32_TOLERANCE, max_logit_diff, prompt_ids
from lokiserve.convert.readme import render_readme
from lokiserve.convert.readpath import OUTPUT_INITS, QUERY_INITS, build_read_path
from lokiserve.convert.source import Source, inspect_source, load_source
from lokiserve.convert.weights import lokiformer_config, lokiformer_state_dict

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
VERIFY_CHATS = ["What is the capital of France?"]


def convert(
    src: str | os.PathLike | Source,
    out: str | os.PathLike,
    *,
    layout: MemoryLayout | None = None,
    query_init: str = "latent-pca",
    output_init: str = "attn-pca",
    dtype: str = "auto",
    force: bool = False,
    seed: int = 0,
    command: str = "lokiserve.convert.convert",
) -> Path:
    """Convert ``src`` (HF Llama dir, .gguf file, or a loaded ``Source``) into
    the LoKiFormer folder ``out``; returns ``out``. Raises ConvertError on bad
    input, leaving nothing behind. ``dtype="auto"`` keeps the checkpoint's."""
    t0 = time.perf_counter()
    out = Path(out).expanduser().absolute()
    check_output(out, force)
    layout = layout or MemoryLayout()
    if query_init not in QUERY_INITS:
        raise ConvertError(f"unknown query init {query_init!r}; choose one of {', '.join(QUERY_INITS)}")
    if output_init not in OUTPUT_INITS:
        raise ConvertError(f"unknown output init {output_init!r}; choose one of {', '.join(OUTPUT_INITS)}")
    if dtype != "auto" and dtype not in DTYPES:
        raise ConvertError(f"unknown dtype {dtype!r}; choose auto or one of {', '.join(DTYPES)}")
    inspected = None if isinstance(src, Source) else inspect_source(src)
    src_config = src.config if isinstance(src, Source) else inspected[0]
    # The geometry is checked against the source's shape before any weight loads.
    lokiformer_config(src_config, layout, torch.float32)
    source = src if isinstance(src, Source) else load_source(src, inspected)
    torch_dtype = source.storage_dtype if dtype == "auto" else DTYPES[dtype]
    config = lokiformer_config(source.config, layout, torch_dtype)
    g = config.memory_geometry
    if query_init == "key-pca" and g.heads * g.key_dim > config.kv_latent_dim // 2:
        raise ConvertError(
            f"query init 'key-pca' needs heads*key_dim={g.heads * g.key_dim} <= the key width {config.kv_latent_dim // 2}"
        )

    log.info("read path for KMM layers %s", list(g.layers))
    read_path, report = build_read_path(
        source.model, source.tokenizer, list(g.layers), g.heads, g.key_dim, g.value_dim, query_init, output_init, seed
    )
    state = lokiformer_state_dict(source.model.state_dict(), config, read_path, torch_dtype)
    with staged_dir(out, force) as tmp:
        log.info("writing %s", out)
        _write_model(tmp, config, state, source)
        del state
        parity = _verify(tmp, source, torch_dtype)
        record = {
            "lokiserve_version": __version__,
            "source": {"path": str(source.info.path), "kind": source.info.kind, "origin": source.info.origin,
                       "sha256": source.info.checksums, "license": source.info.license},
            "options": {"layout": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(layout).items()},
                        "query_init": query_init, "output_init": output_init, "dtype": str(torch_dtype).split(".")[-1],
                        "seed": seed},
            "read_path": report,
            "parity": parity,
        }
        (tmp / "conversion.json").write_text(json.dumps(record, indent=2) + "\n")
        (tmp / "README.md").write_text(render_readme(source.info, config, report, parity, command))
    log.info("done in %.1f s: %s", time.perf_counter() - t0, out)
    return out


def _write_model(folder: Path, config, state: dict[str, torch.Tensor], source: Source) -> None:
    from safetensors.torch import save_file

    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(folder)
    source.tokenizer.save_pretrained(folder)  # keeps the source's chat template
    source.model.generation_config.save_pretrained(folder)


def _verify(folder: Path, source: Source, torch_dtype: torch.dtype) -> dict:
    """Load the written folder the way users will and compare it with the source."""
    from lokiserve.model import LoKiFormerForCausalLM

    model, info = LoKiFormerForCausalLM.from_pretrained(folder, dtype=torch.float32, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if problems:
        raise ConvertError(f"converted checkpoint does not load cleanly: {problems}")
    prompts = prompt_ids(source.tokenizer, calibration_texts()[:4], VERIFY_CHATS)
    diff = max_logit_diff(source.model, model.eval(), prompts)
    lossless = torch_dtype == torch.float32 or torch_dtype == source.storage_dtype
    if lossless and not diff <= FLOAT32_TOLERANCE:
        raise ConvertError(f"converted model deviates from the source: max |logit diff| {diff:.3g} > {FLOAT32_TOLERANCE}")
    status = f"within {FLOAT32_TOLERANCE}" if lossless else f"not checked: {torch_dtype} is narrower than the source"
    return {"max_abs_diff": diff, "prompts": len(prompts), "status": status}


__all__ = ["convert", "DTYPES"]
