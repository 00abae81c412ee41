"""Request/response schemas of the admin API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class FieldInfo(BaseModel):
    id: int
    name: str
    state: Literal["active", "zeroed"]
    sha256: str
    version: int
    source: str
    updated_at: str | None


class FieldList(BaseModel):
    version: int
    fields: list[FieldInfo]


class PathBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: Literal["ok"]
