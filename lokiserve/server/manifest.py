"""The committed field set, persisted so a restart (even after kill -9) restores it.

Layout under the state dir::

    manifest.json                 # version + per-field state, written atomically
    fields/<sha256>.safetensors   # copy of every applied field file

A field file is written (and fsynced) *before* the manifest that names it is
renamed into place, so a crash at any point leaves the previous manifest
with files that all exist: the last committed state, never a mix.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lokiserve.memory import atomic_write_bytes

MANIFEST_FORMAT = "lokiserve.manifest/1"


@dataclass
class FieldRecord:
    name: str
    state: str  # "active" | "zeroed"
    sha256: str  # of the live contents
    source: str  # "checkpoint", an uploaded file's name, a memory-dir path, "zeroed"
    version: int = 0  # memory version at which this field last changed
    updated_at: str | None = None
    file: str | None = None  # relative to the state dir; None = as in the checkpoint


@dataclass
class Manifest:
    backbone: str
    version: int = 0
    fields: dict[str, FieldRecord] = field(default_factory=dict)

    def to_json(self) -> bytes:
        body = {"format": MANIFEST_FORMAT, "backbone": self.backbone, "version": self.version,
                "fields": {k: asdict(v) for k, v in self.fields.items()}}
        return json.dumps(body, indent=2).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "Manifest":
        body = json.loads(data)
        if body.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"manifest format {body.get('format')!r} is not {MANIFEST_FORMAT!r}")
        fields = {k: FieldRecord(**v) for k, v in body["fields"].items()}
        return cls(backbone=body["backbone"], version=int(body["version"]), fields=fields)


class ManifestStore:
    def __init__(self, state_dir: Path):
        self.state_dir = state_dir
        self.path = state_dir / "manifest.json"
        (state_dir / "fields").mkdir(parents=True, exist_ok=True)

    def load(self) -> Manifest | None:
        if not self.path.exists():
            return None
        return Manifest.from_json(self.path.read_bytes())

    def save(self, manifest: Manifest) -> None:
        atomic_write_bytes(self.path, manifest.to_json())

    def store_field_file(self, sha256: str, data: bytes) -> Path:
        """Keep a copy of an applied field file (content-addressed, fsynced)."""
        path = self.state_dir / "fields" / f"{sha256}.safetensors"
        if not path.exists():
            atomic_write_bytes(path, data)
        return path

    def field_path(self, record: FieldRecord) -> Path | None:
        return None if record.file is None else self.state_dir / record.file
