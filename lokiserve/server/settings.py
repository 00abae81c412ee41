"""Admin API settings: one object, checked at start so unsafe setups never run."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field as Setting
from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class AdminSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOKISERVE_", extra="ignore")

    admin_host: str = "127.0.0.1"
    admin_port: int = Setting(8001, ge=1, le=65535)
    admin_token: str | None = None  # LOKISERVE_ADMIN_TOKEN
    admin_token_file: Path | None = None
    memory_dir: Path  # JSON PUTs may only name files under here
    state_dir: Path  # manifest + copies of applied field files
    max_field_bytes: int = Setting(256 << 20, ge=1024)
    allow_remote_admin: bool = False

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> "AdminSettings":
        if self.admin_token is not None and len(self.admin_token) < 16:
            raise ValueError("LOKISERVE_ADMIN_TOKEN must be at least 16 characters")
        if not is_loopback_host(self.admin_host) and not self.allow_remote_admin:
            raise ValueError(
                f"admin API on non-loopback host {self.admin_host!r} refused: "
                "pass --allow-remote-admin (and put TLS in front) to expose it"
            )
        self.memory_dir = self.memory_dir.resolve()
        if not self.memory_dir.is_dir():
            raise ValueError(f"memory folder {self.memory_dir} does not exist")
        return self


def is_loopback_host(host: str) -> bool:
    """True for localhost and loopback addresses (IPv4 and IPv6)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
