"""The committed field set, persisted so a restart (even after kill -9) restores it.

Layout under the state dir::

    manifest.json                 # version + per-field state, written atomically
    fields/<sha256>.safetensors   # copy of every applied (or staged) field file
    transactions/<id>.json        # every staged, committed or aborted fleet transaction

A field file is written (and fsynced) *before* the manifest that names it is
renamed into place, so a crash at any point leaves the previous manifest
with files that all exist: the last committed state, never a mix.

A transaction commits when the manifest naming it (``transactions``) is
renamed into place; its own record is rewritten after that, and a start-up
that finds a staged record the manifest names finishes the rewrite. So a
transaction is committed exactly when its changes are in the manifest.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lokiserve.memory import atomic_write_bytes

MANIFEST_FORMAT = "lokiserve.manifest/1"
TRANSACTION_FORMAT = "lokiserve.transaction/1"


@dataclass
class FieldRecord:
    name: str  # shown name: the config's, or the name a field file brought (manifest keys stay the config's)
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
    transactions: dict[str, int] = field(default_factory=dict)  # committed transaction id -> its memory version

    def to_json(self) -> bytes:
        body = {"format": MANIFEST_FORMAT, "backbone": self.backbone, "version": self.version,
                "fields": {k: asdict(v) for k, v in self.fields.items()}, "transactions": self.transactions}
        return json.dumps(body, indent=2).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "Manifest":
        body = json.loads(data)
        if body.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"manifest format {body.get('format')!r} is not {MANIFEST_FORMAT!r}")
        fields = {k: FieldRecord(**v) for k, v in body["fields"].items()}
        return cls(backbone=body["backbone"], version=int(body["version"]), fields=fields,
                   transactions={str(k): int(v) for k, v in body.get("transactions", {}).items()})


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


@dataclass
class StagedChange:
    """One field of a transaction: its new contents, and what it was staged against."""

    field: int  # index
    name: str  # the field's shown name once committed
    state: str  # "active" | "zeroed" once committed
    sha256: str  # of the new contents
    source: str
    file: str | None  # staged copy, relative to the state dir; None = zero the field
    base: dict[str, str]  # {"name", "state", "sha256"} of the live field when staged


@dataclass
class TransactionRecord:
    id: str
    state: str  # "staged" | "committed" | "aborted" (a staged one past expires_at is expired)
    created_at: float  # unix time
    expires_at: float
    changes: list[StagedChange]
    committed_at: float | None = None
    version: int | None = None  # memory version the commit made
    fields: list[dict] = field(default_factory=list)  # the changed fields as committed

    def to_json(self) -> bytes:
        return json.dumps({"format": TRANSACTION_FORMAT, **asdict(self)}, indent=2).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "TransactionRecord":
        body = json.loads(data)
        if body.pop("format", None) != TRANSACTION_FORMAT:
            raise ValueError(f"transaction format is not {TRANSACTION_FORMAT!r}")
        body["changes"] = [StagedChange(**c) for c in body["changes"]]
        return cls(**body)


class TransactionStore:
    """One JSON file per transaction (atomic writes), so a restart still knows
    what is staged, committed or aborted."""

    def __init__(self, state_dir: Path):
        self.dir = state_dir / "transactions"
        self.dir.mkdir(parents=True, exist_ok=True)

    def load_all(self) -> dict[str, TransactionRecord]:
        out = {}
        for path in sorted(self.dir.glob("*.json")):
            try:
                record = TransactionRecord.from_json(path.read_bytes())
            except (OSError, ValueError, TypeError, KeyError) as exc:
                raise RuntimeError(f"unreadable transaction record {path}: {exc}") from None
            out[record.id] = record
        return out

    def save(self, record: TransactionRecord) -> None:
        atomic_write_bytes(self.dir / f"{record.id}.json", record.to_json())

    def delete(self, tx_id: str) -> None:
        (self.dir / f"{tx_id}.json").unlink(missing_ok=True)
