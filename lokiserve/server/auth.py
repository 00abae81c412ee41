"""Bearer-token auth for the admin API (everything but /healthz)."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from lokiserve.server.settings import AdminSettings


def resolve_token(settings: AdminSettings) -> tuple[str, Path | None]:
    """Env var, else token file, else a fresh token stored 0600 in the state dir.

    Returns (token, path of the generated file or None)."""
    if settings.admin_token:
        return settings.admin_token, None
    if settings.admin_token_file is not None:
        token = settings.admin_token_file.read_text().strip()
        if len(token) < 16:
            raise ValueError(f"admin token in {settings.admin_token_file} is shorter than 16 characters")
        return token, None
    path = settings.state_dir / "admin-token"
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    os.chmod(path, 0o600)
    return token, path


def token_equal(given: str, token: str) -> bool:
    """Constant-time comparison of a presented token with the admin token."""
    return hmac.compare_digest(given.encode(), token.encode())


def token_matches(header: str | None, token: str) -> bool:
    """Constant-time comparison of an ``Authorization: Bearer …`` header."""
    if not header or not header.startswith("Bearer "):
        return False
    return token_equal(header[len("Bearer ") :], token)
