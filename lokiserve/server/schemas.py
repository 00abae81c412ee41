"""Request/response schemas of the admin API, and the documented error statuses."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class FieldInfo(BaseModel):
    id: int
    name: str
    state: Literal["active", "zeroed"]
    sha256: str
    version: int
    source: str
    updated_at: str | None
    report: dict | None = None  # the field file's verification report (lokiserve edit / POST .../facts)


class EditResult(FieldInfo):
    """The field after a live edit, and how long the request took to apply."""

    seconds: float


class FieldList(BaseModel):
    version: int
    fields: list[FieldInfo]


class ShardInfo(BaseModel):
    name: str
    state: Literal["active", "zeroed"]
    sha256: str  # of this rank's shard (keys in full, its d_v slice of the values)


class RankReport(BaseModel):
    rank: int  # tensor-parallel rank
    fields: list[ShardInfo]


class ReplicaReport(BaseModel):
    replica: int  # data-parallel engine
    ranks: list[RankReport]


class ReplicaList(BaseModel):
    consistent: bool  # every replica's ranks hold the same fields
    replicas: list[ReplicaReport]


class PathBody(BaseModel):
    """JSON body of a PUT: a field file under the server's memory folder."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"path": "edits/x.safetensors"}]})
    path: str = Field(min_length=1, max_length=4096, description="relative to --memory-dir; outside it is a 403")


TRANSACTION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
MAX_TTL_SECONDS = 3600.0
DEFAULT_TTL_SECONDS = 300.0


class ChangeBody(BaseModel):
    """One field of a transaction: exactly one of ``file_b64``, ``path`` or ``zero``."""

    model_config = ConfigDict(extra="forbid", strict=True)
    field: str = Field(min_length=1, max_length=200, description="a field name or its index")
    file_b64: str | None = Field(None, description="a field file, base64 (standard alphabet, padded)")
    path: str | None = Field(None, min_length=1, max_length=4096, description="a field file relative to --memory-dir")
    zero: bool = Field(False, description="true: remove the field from retrieval")
    allow_rename: bool = Field(False, description="accept a file made for another field onto a non-empty one")
    source: str | None = Field(None, max_length=200, description="label recorded as the field's source")

    @model_validator(mode="after")
    def _exactly_one(self) -> "ChangeBody":
        given = [k for k in ("file_b64", "path") if getattr(self, k) is not None] + (["zero"] if self.zero else [])
        if len(given) != 1:
            raise ValueError(f"each change needs exactly one of file_b64, path or zero: true (got {given or 'none'})")
        return self


class TransactionBody(BaseModel):
    """POST /memory/transactions: stage field changes; nothing live changes until the commit."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={
        "examples": [{"id": "rollout-42", "ttl_seconds": 300, "changes": [{"field": "geography", "path": "edits/geography.safetensors"}]}]})
    id: str | None = Field(None, pattern=TRANSACTION_ID_PATTERN,
                           description="client-chosen id (default: generated); staging the same changes again under it is a no-op")
    ttl_seconds: float = Field(DEFAULT_TTL_SECONDS, ge=1, le=MAX_TTL_SECONDS, description="seconds until it expires, uncommitted")
    changes: list[ChangeBody] = Field(min_length=1, max_length=64)


class StagedField(BaseModel):
    id: int  # field index
    field: str  # its shown name when staged
    name: str  # its shown name once committed (the file's name)
    state: Literal["active", "zeroed"]  # once committed
    sha256: str  # of the new contents
    source: str


class TransactionInfo(BaseModel):
    id: str
    state: Literal["staged", "committed", "aborted", "expired"]
    created_at: str
    expires_at: str  # a staged transaction not committed by then expires
    committed_at: str | None
    version: int | None  # memory version of the commit
    changes: list[StagedField]
    fields: list[FieldInfo]  # once committed: the changed fields as committed


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema with its ``$defs`` inlined, for a request body
    declared by hand (an OpenAPI document has no ``#/$defs``)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def walk(node):
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail
    report: dict | None = None  # a live edit refused by verification: its numbers


class Health(BaseModel):
    status: Literal["ok", "unhealthy"]
    replicas: int | None = None  # data-parallel engines checked
    message: str | None = None  # why not healthy


ERROR_DESCRIPTIONS = {
    400: "bad request: unreadable body, not a field file, bad JSON or path",
    401: "missing or invalid bearer token",
    403: "path outside the memory folder",
    404: "unknown field, or no such file in the memory folder",
    409: "field trained against another backbone or memory geometry, or made for another field (field_name_mismatch); "
         "a live edit while another change runs (edit_in_progress); "
         "for transactions: the id is taken, it was aborted or committed, or a field changed since staging",
    410: "the transaction expired before its commit",
    412: "If-Match does not match the field's current sha256",
    413: "body or file over the size limit",
    415: "content type other than application/octet-stream or application/json",
    422: "wrong tensors, shapes or dtype, or non-finite values; a live edit that failed verification "
         "(verification_failed, with its report)",
    429: "too many transactions staged at once",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, each an ``ErrorBody``."""
    return {status: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[status]} for status in statuses}
