"""Reading a source checkpoint (a HF Llama directory or a .gguf file) and
refusing, by name, anything whose math LoKiFormer does not reproduce exactly.

The file is checked (exists, readable, not truncated) and the config is
checked before any weight is loaded, so a bad source fails in seconds.
Accepted: ``LlamaForCausalLM``, and ``MistralForCausalLM`` when it has no
sliding window (then its math is Llama's: no biases, SiLU, plain RoPE).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lokiserve.convert.errors import ConvertError
from lokiserve.convert.fetch import known_by_sha256, sha256_file

log = logging.getLogger(__name__)

SUPPORTED_ARCHITECTURES = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM"}


@dataclass
class SourceInfo:
    """Where a source came from: what the converted model's README records."""

    path: Path
    kind: str  # "gguf" or "hf"
    checksums: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    origin: str = ""
    license: str | None = None


@dataclass
class Source:
    """A loaded source: float32 model in eval mode, its tokenizer and provenance."""

    model: torch.nn.Module
    tokenizer: object
    info: SourceInfo
    storage_dtype: torch.dtype  # dtype of the checkpoint's weights on disk

    @property
    def config(self):
        return self.model.config


# --------------------------------------------------------------------------- checks


def rope_theta(config) -> float:
    params = getattr(config, "rope_parameters", None) or {}
    return float(params.get("rope_theta", getattr(config, "rope_theta", 10000.0)))


def head_dim(config) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def check_source_config(config) -> None:
    """Raise ConvertError unless the source's math maps exactly onto LoKiFormer."""
    model_type = getattr(config, "model_type", None)
    archs = list(getattr(config, "architectures", None) or [])
    if model_type not in SUPPORTED_ARCHITECTURES:
        raise ConvertError(
            f"architecture {archs or model_type!r} (model_type {model_type!r}) is not supported: "
            f"only LlamaForCausalLM (or MistralForCausalLM without a sliding window) converts exactly"
        )
    if archs and archs != [SUPPORTED_ARCHITECTURES[model_type]]:
        raise ConvertError(f"architectures {archs} are not supported: expected [{SUPPORTED_ARCHITECTURES[model_type]!r}]")
    if model_type == "mistral" and getattr(config, "sliding_window", None) is not None:
        raise ConvertError(
            f"sliding_window={config.sliding_window}: LoKiFormer attends to the full context, "
            "so a sliding-window model does not convert exactly"
        )
    for flag in ("attention_bias", "mlp_bias"):
        if getattr(config, flag, False):
            raise ConvertError(f"{flag}=True: LoKiFormer's projections have no bias")
    if getattr(config, "hidden_act", "silu") != "silu":
        raise ConvertError(f"hidden_act={config.hidden_act!r}: LoKiFormer's MLP is SwiGLU (silu)")
    for attr in ("rope_parameters", "rope_scaling"):
        params = getattr(config, attr, None)
        rope_type = (params or {}).get("rope_type", (params or {}).get("type", "default"))
        if rope_type not in (None, "default"):
            raise ConvertError(f"rope scaling {rope_type!r}: LoKiFormer implements plain RoPE only")
    quant = getattr(config, "quantization_config", None)
    method = quant.get("quant_method") if isinstance(quant, dict) else getattr(quant, "quant_method", None)
    if quant is not None and str(getattr(method, "value", method)) != "gguf":
        raise ConvertError(f"quantization {method!r} is not supported: convert an unquantized checkpoint")
    if config.num_attention_heads % config.num_key_value_heads:
        raise ConvertError(
            f"num_key_value_heads={config.num_key_value_heads} does not divide "
            f"num_attention_heads={config.num_attention_heads}"
        )


def _check_gguf_file(path: Path) -> dict:
    """Read the GGUF header; refuse a truncated file or a non-llama one. Returns metadata."""
    from gguf import GGUFReader

    try:
        reader = GGUFReader(path)
    except Exception as exc:  # the reader raises bare numpy errors on truncation
        raise ConvertError(f"{path} is not a readable GGUF file (truncated or corrupt): {exc}") from None
    size = path.stat().st_size
    end = max((t.data_offset + t.n_bytes for t in reader.tensors), default=0)
    if end > size:
        raise ConvertError(f"{path} is truncated: tensor data ends at byte {end}, file has {size}")

    def text(key: str) -> str | None:
        f = reader.fields.get(key)
        return None if f is None else bytes(f.parts[f.data[0]]).decode("utf-8", "replace")

    arch = text("general.architecture")
    if arch != "llama":
        raise ConvertError(f"{path}: GGUF architecture {arch!r} is not supported, only 'llama'")
    return {"license": text("general.license"), "name": text("general.name")}


def _check_hf_dir(path: Path) -> list[Path]:
    """Refuse a directory without config/weights, or with a truncated safetensors file."""
    from safetensors import safe_open

    if not (path / "config.json").is_file():
        raise ConvertError(f"{path} has no config.json: not a Hugging Face model directory")
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        raise ConvertError(f"{path} has no *.safetensors weights (other formats are not read)")
    for file in weights:
        try:
            with safe_open(file, "pt") as fh:
                fh.keys()
        except Exception as exc:
            raise ConvertError(f"{file} is not a readable safetensors file (truncated or corrupt): {exc}") from None
    return weights


def _readme_license(path: Path) -> str | None:
    readme = path / "README.md"
    if readme.is_file():
        m = re.search(r"^license:\s*(\S+)\s*$", readme.read_text(errors="replace"), re.M)
        if m:
            return m.group(1)
    return None


def inspect_source(path: str | os.PathLike) -> tuple[object, SourceInfo]:
    """Check a source's files and config without loading weights."""
    from transformers import AutoConfig

    path = Path(path).expanduser()
    if not path.exists():
        raise ConvertError(f"source {path} does not exist")
    if path.is_file() and path.suffix == ".gguf":
        meta = _check_gguf_file(path)
        digest = sha256_file(path)
        known = known_by_sha256(digest)
        info = SourceInfo(path=path, kind="gguf", checksums={path.name: digest},
                          origin=f"{known.origin} (cached at {path})" if known else f"local file {path}",
                          license=known.license if known else meta["license"])
        load_args = (str(path.parent),), {"gguf_file": path.name}
    elif path.is_dir():
        weights = _check_hf_dir(path)
        info = SourceInfo(path=path, kind="hf", license=_readme_license(path), origin=f"local directory {path}")
        info.checksums = {f.name: sha256_file(f) for f in weights}
        load_args = (str(path),), {}
    else:
        raise ConvertError(f"source {path} is neither a .gguf file nor a model directory")
    try:
        config = AutoConfig.from_pretrained(*load_args[0], **load_args[1])
    except Exception as exc:
        raise ConvertError(f"cannot read the config of {path}: {exc}") from None
    check_source_config(config)
    return config, info


def load_source(path: str | os.PathLike, inspected: tuple[object, SourceInfo] | None = None) -> Source:
    """Load a checked source as a float32 causal LM plus its tokenizer
    (``inspected``: the result of ``inspect_source(path)``, to skip re-checking)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config, info = inspected or inspect_source(path)
    if info.kind == "gguf":
        args, kwargs = (str(info.path.parent),), {"gguf_file": info.path.name}
        storage = torch.float32  # de-quantized
    else:
        args, kwargs = (str(info.path),), {}
        storage = _dtype_of(config)
    log.info("loading %s", info.path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(*args, **kwargs)
    except Exception as exc:
        raise ConvertError(f"cannot load a tokenizer from {info.path}: {exc}") from None
    try:
        model = AutoModelForCausalLM.from_pretrained(*args, **kwargs, dtype=torch.float32)
    except Exception as exc:
        raise ConvertError(f"cannot load the weights of {info.path}: {exc}") from None
    return Source(model=model.eval(), tokenizer=tokenizer, info=info, storage_dtype=storage)


def _dtype_of(config) -> torch.dtype:
    dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None) or torch.float32
    return getattr(torch, dtype) if isinstance(dtype, str) else dtype


def plain_llama(source: Source):
    """A serializable LlamaForCausalLM with the source's weights: a model loaded
    from GGUF refuses ``save_pretrained``, so rebuild it from config + state dict."""
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = source.config.to_dict()
    cfg.pop("quantization_config", None)
    cfg["architectures"] = [SUPPORTED_ARCHITECTURES[cfg["model_type"]]]
    config = AutoConfig.for_model(**cfg)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(source.model.state_dict(), strict=True)
    return model.eval()


def export_source_llama(src: str | os.PathLike | Source, out_dir: str | os.PathLike) -> Path:
    """Save the (de-quantized) source as a plain HF Llama directory, the
    reference that parity tests and benchmarks compare a conversion against."""
    from lokiserve.convert.output import staged_dir

    source = src if isinstance(src, Source) else load_source(src)
    with staged_dir(Path(out_dir)) as tmp:
        model = plain_llama(source)
        model.generation_config = source.model.generation_config
        model.save_pretrained(tmp)
        source.tokenizer.save_pretrained(tmp)
    return Path(out_dir)


__all__ = [
    "Source",
    "SourceInfo",
    "check_source_config",
    "inspect_source",
    "load_source",
    "export_source_llama",
    "plain_llama",
    "rope_theta",
    "head_dim",
]
