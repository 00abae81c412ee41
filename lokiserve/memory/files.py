"""Field files: the unit of knowledge that hot swapping moves around.

A field file is one safetensors file holding ``layers.<i>.keys [N, d_k]`` and
``layers.<i>.values [N, d_v]`` (float32) for every KMM layer ``i`` and nothing
else, with string metadata ``format = lokiserve.field/1``, ``name``,
``backbone`` (hash of the backbone it was trained against) and free
``description``, ``created``, ``source``.

The reader parses the safetensors header itself instead of trusting the
library with untrusted bytes: every size, offset, dtype and name is checked
against hard bounds *before* any tensor memory is allocated, so a hostile file
(truncated, header bomb, overlapping offsets, NaN) is refused with a
``FieldError`` that names the problem. Subclasses carry the HTTP status the
admin API answers with.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import tempfile
from dataclasses import dataclass, field as dc_field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Mapping

import torch

FORMAT = "lokiserve.field/1"
MAX_HEADER_BYTES = 1 << 20  # 1 MiB: a real header is a few hundred bytes per layer
DEFAULT_MAX_FILE_BYTES = 1 << 30  # 1 GiB unless the caller sets a tighter limit
METADATA_KEYS = ("format", "name", "backbone", "description", "created", "source", "report")
MAX_METADATA_VALUE = 65536  # a verification report (JSON) is the longest value


class FieldError(ValueError):
    """A field file or field that cannot be used; the message names the problem."""

    status = 400


class FieldFormatError(FieldError):
    """Not a readable lokiserve field file (truncated, bad header, wrong format)."""

    status = 400


class FieldTooLargeError(FieldError):
    """Over the configured size limit."""

    status = 413


class FieldBackboneError(FieldError):
    """Trained against another backbone or memory geometry."""

    status = 409


class FieldContentError(FieldError):
    """Wrong tensor set, shapes, dtype, or non-finite values."""

    status = 422


@dataclass(frozen=True)
class MemoryGeometry:
    """Shape of the field memory: what a field file must match, besides the backbone."""

    layers: tuple[int, ...]
    num_fields: int
    slots: int
    key_dim: int
    value_dim: int
    heads: int
    topk: int

    def tensor_shapes(self) -> dict[str, tuple[int, int]]:
        shapes = {}
        for i in self.layers:
            shapes[f"layers.{i}.keys"] = (self.slots, self.key_dim)
            shapes[f"layers.{i}.values"] = (self.slots, self.value_dim)
        return shapes

    def field_bytes(self) -> int:
        """Bytes of tensor data in one float32 field file."""
        return 4 * sum(a * b for a, b in self.tensor_shapes().values())


class BackboneHasher:
    """Streaming backbone hash: tensors may arrive in any order (a checkpoint
    loader sees them one at a time), each is digested on arrival and only the
    digests are kept, sorted by name at the end."""

    def __init__(self) -> None:
        self._digests: dict[str, bytes] = {}

    def add(self, name: str, tensor: torch.Tensor) -> None:
        t = tensor.detach().to(device="cpu", dtype=torch.float32).contiguous()
        h = hashlib.sha256(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
        self._digests[name] = h.digest()

    def hexdigest(self, geometry: MemoryGeometry) -> str:
        h = hashlib.sha256()
        geo = {k: list(v) if isinstance(v, tuple) else v for k, v in geometry.__dict__.items()}
        h.update(json.dumps(geo, sort_keys=True).encode())
        for name in sorted(self._digests):
            h.update(name.encode() + b"\0" + self._digests[name])
        return h.hexdigest()


def backbone_hash(tensors: Iterable[tuple[str, torch.Tensor]], geometry: MemoryGeometry) -> str:
    """sha256 over the backbone weights (as float32, by name) and the memory
    geometry: a field is only meaningful against the exact weights that
    produce its queries and read its values."""
    hasher = BackboneHasher()
    for name, tensor in tensors:
        hasher.add(name, tensor)
    return hasher.hexdigest(geometry)


def resolve_field_id(names: list[str], field_id: int | str) -> int:
    """A field id is its name or its index (an int or a string of digits)."""
    if isinstance(field_id, int) and not isinstance(field_id, bool):
        index = field_id
    elif isinstance(field_id, str) and field_id.isascii() and field_id.isdigit() and len(field_id) <= 12:
        index = int(field_id)  # ASCII digits only: "١" and "²" pass str.isdigit()
    elif isinstance(field_id, str) and field_id in names:
        return names.index(field_id)
    else:
        raise KeyError(f"unknown field {field_id!r}; fields are {names}")
    if not 0 <= index < len(names):
        raise KeyError(f"field index {index} out of range 0..{len(names) - 1}")
    return index


@dataclass
class Field:
    """One field: per-KMM-layer keys [N, d_k] and values [N, d_v] plus metadata."""

    name: str
    keys: dict[int, torch.Tensor]
    values: dict[int, torch.Tensor]
    backbone: str
    metadata: dict[str, str] = dc_field(default_factory=dict)

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {}
        for i in sorted(self.keys):
            out[f"layers.{i}.keys"] = self.keys[i]
            out[f"layers.{i}.values"] = self.values[i]
        return out

    def is_empty(self) -> bool:
        """All-zero memory: the empty field (stored as zeroed, contributes nothing)."""
        return all(not bool(t.any()) for t in self.tensors().values())

    def sha256(self) -> str:
        """Checksum of the contents (tensors only, not metadata): equal
        checksums mean the model behaves identically with either field."""
        return tensors_sha256(self.tensors())

    def check_compatible(self, geometry: MemoryGeometry, backbone: str) -> None:
        """Raise FieldError unless this field fits ``geometry`` and ``backbone``."""
        check_tensors(self.tensors(), geometry)
        if self.backbone != backbone:
            raise FieldBackboneError(
                f"field {self.name!r} was trained against backbone {self.backbone[:16]}…, "
                f"the model's backbone is {backbone[:16]}…"
            )

    def header_metadata(self) -> dict[str, str]:
        meta = {k: str(v) for k, v in self.metadata.items() if k in METADATA_KEYS}
        meta.setdefault("created", datetime.now(timezone.utc).isoformat(timespec="seconds"))
        meta.update(format=FORMAT, name=self.name, backbone=self.backbone)
        return meta


def tensors_sha256(tensors: Mapping[str, torch.Tensor]) -> str:
    """sha256 over field tensors as float32, in field-file order (layer, then
    keys before values); also what a serving rank reports for its shard."""
    h = hashlib.sha256()
    for name in sorted(tensors, key=lambda n: (int(n.split(".")[1]), n)):
        h.update(name.encode() + b"\0")
        h.update(tensors[name].detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


def check_tensors(tensors: Mapping[str, torch.Tensor], geometry: MemoryGeometry) -> None:
    """The tensor set, shapes, dtype and finiteness a geometry demands."""
    expected = geometry.tensor_shapes()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing:
        raise FieldContentError(f"missing tensors: {', '.join(missing)}")
    if extra:
        raise FieldContentError(f"unexpected tensors: {', '.join(extra[:8])}")
    for name, shape in expected.items():
        t = tensors[name]
        if t.dtype != torch.float32:
            raise FieldContentError(f"{name} has dtype {t.dtype}, expected float32")
        if tuple(t.shape) != shape:
            raise FieldContentError(f"{name} has shape {tuple(t.shape)}, expected {shape}")
        if not bool(torch.isfinite(t).all()):
            raise FieldContentError(f"{name} contains NaN or Inf")


def is_memory_tensor(name: str) -> bool:
    """Names of the field memory in a checkpoint (keys, values, enabled mask)."""
    return ".kmm." in name and name.rsplit(".", 1)[-1] in ("keys", "values", "enabled")


def is_backbone_tensor(name: str, tied_embeddings: bool) -> bool:
    """Checkpoint tensors a field depends on: all but the memory itself (and the
    tied LM head, which is the embedding under another name and is not saved)."""
    return not is_memory_tensor(name) and not (tied_embeddings and name == "lm_head.weight")


# --------------------------------------------------------------------------- file I/O


def _parse_header(data: memoryview) -> tuple[dict, int]:
    if len(data) < 8:
        raise FieldFormatError(f"truncated file: {len(data)} bytes, no safetensors header")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > MAX_HEADER_BYTES:
        raise FieldFormatError(f"header claims {header_len} bytes, over the {MAX_HEADER_BYTES}-byte limit")
    if 8 + header_len > len(data):
        raise FieldFormatError(f"truncated file: header claims {header_len} bytes, file has {len(data) - 8}")
    try:
        header = json.loads(bytes(data[8 : 8 + header_len]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FieldFormatError(f"header is not valid JSON: {exc}") from None
    if not isinstance(header, dict):
        raise FieldFormatError("header is not a JSON object")
    return header, 8 + header_len


def _parse_metadata(header: dict) -> dict[str, str]:
    meta = header.pop("__metadata__", None)
    if not isinstance(meta, dict):
        raise FieldFormatError("no __metadata__: not a lokiserve field file")
    for k, v in meta.items():
        if not isinstance(v, str) or len(v) > MAX_METADATA_VALUE:
            raise FieldFormatError(f"metadata {k!r} must be a string of at most {MAX_METADATA_VALUE} chars")
    if meta.get("format") != FORMAT:
        raise FieldFormatError(f"format is {meta.get('format')!r}, expected {FORMAT!r}")
    for key in ("name", "backbone"):
        if not meta.get(key):
            raise FieldFormatError(f"metadata {key!r} is missing")
    return meta


def _tensor_name_layer(name: str) -> tuple[int, str]:
    parts = name.split(".")
    if len(parts) != 3 or parts[0] != "layers" or not parts[1].isdigit() or parts[2] not in ("keys", "values"):
        raise FieldContentError(f"unexpected tensor {name[:80]!r}: only layers.<i>.keys/values allowed")
    return int(parts[1]), parts[2]


def _parse_tensors(header: dict, body: memoryview) -> dict[str, torch.Tensor]:
    """Validate every entry against the body before viewing any bytes."""
    if len(header) > 4096:
        raise FieldContentError(f"{len(header)} tensors: not a field file")
    spans = []
    tensors: dict[str, torch.Tensor] = {}
    for name, info in header.items():
        _tensor_name_layer(name)
        if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= set(info):
            raise FieldFormatError(f"tensor {name!r}: malformed header entry")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype != "F32":
            raise FieldContentError(f"{name} has dtype {dtype!r}, expected 'F32' (float32)")
        if (
            not isinstance(shape, list)
            or len(shape) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 1 << 31 for s in shape)
        ):
            raise FieldContentError(f"{name} has shape {str(shape)[:80]}, expected [N, d]")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        ):
            raise FieldFormatError(f"{name}: malformed data_offsets")
        start, end = offsets
        nbytes = 4 * shape[0] * shape[1]
        if not 0 <= start <= end <= len(body):
            raise FieldFormatError(
                f"truncated file: {name} needs bytes {start}..{end}, data section has {len(body)}"
            )
        if end - start != nbytes:
            raise FieldFormatError(f"{name}: data_offsets span {end - start} bytes, shape needs {nbytes}")
        spans.append((start, end, name))
    spans.sort()
    for (s0, e0, n0), (s1, _, n1) in zip(spans, spans[1:]):
        if s1 < e0:
            raise FieldFormatError(f"tensors {n0} and {n1} overlap")
    for start, end, name in spans:
        shape = header[name]["shape"]
        # Copy out of the buffer: the caller's bytes may be reused or freed.
        raw = bytes(body[start:end])
        t = torch.frombuffer(bytearray(raw), dtype=torch.float32) if raw else torch.empty(0)
        tensors[name] = t.reshape(shape)
    return tensors


def read_field(source: str | os.PathLike | bytes | bytearray | memoryview, *, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> Field:
    """Read and structurally validate a field file (path or bytes).

    Checks the format, metadata, tensor names, dtypes, rank-2 shapes, layer
    pairing and finiteness. Compatibility with a particular model (geometry,
    backbone) is ``Field.check_compatible``.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = memoryview(source)
        if len(data) > max_bytes:
            raise FieldTooLargeError(f"field file is {len(data)} bytes, over the {max_bytes}-byte limit")
    else:
        path = Path(source)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise FieldFormatError(f"cannot read {path}: {exc.strerror}") from None
        if not path.is_file():
            raise FieldFormatError(f"{path} is not a regular file")
        if size > max_bytes:
            raise FieldTooLargeError(f"{path} is {size} bytes, over the {max_bytes}-byte limit")
        with open(path, "rb") as fh:
            data = memoryview(fh.read(max_bytes + 1))
    header, data_start = _parse_header(data)
    meta = _parse_metadata(header)
    tensors = _parse_tensors(header, data[data_start:])
    keys: dict[int, torch.Tensor] = {}
    values: dict[int, torch.Tensor] = {}
    for name, t in tensors.items():
        layer, kind = _tensor_name_layer(name)
        (keys if kind == "keys" else values)[layer] = t
    if set(keys) != set(values):
        raise FieldContentError(
            f"layers {sorted(set(keys) ^ set(values))} have keys without values or values without keys"
        )
    for layer in keys:
        if keys[layer].shape[0] != values[layer].shape[0]:
            raise FieldContentError(
                f"layer {layer}: {keys[layer].shape[0]} keys but {values[layer].shape[0]} values"
            )
    for name, t in tensors.items():
        if not bool(torch.isfinite(t).all()):
            raise FieldContentError(f"{name} contains NaN or Inf")
    extra = {k: v for k, v in meta.items() if k not in ("format", "name", "backbone")}
    return Field(name=meta["name"], keys=keys, values=values, backbone=meta["backbone"], metadata=extra)


def field_to_bytes(field: Field) -> bytes:
    from safetensors.torch import save

    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in field.tensors().items()}
    return save(tensors, metadata=field.header_metadata())


def write_field(field: Field, path: str | os.PathLike) -> Path:
    """Write atomically (temp file in the same folder, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, field_to_bytes(field))
    return path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Readers see the old file or the new one, never a partial write."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


__all__ = [
    "FORMAT",
    "Field",
    "FieldError",
    "FieldFormatError",
    "FieldTooLargeError",
    "FieldBackboneError",
    "FieldContentError",
    "MemoryGeometry",
    "BackboneHasher",
    "backbone_hash",
    "read_field",
    "write_field",
    "field_to_bytes",
    "resolve_field_id",
    "tensors_sha256",
    "is_memory_tensor",
    "is_backbone_tensor",
]
