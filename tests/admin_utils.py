"""The real `lokiserve serve` process the admin-API tests talk to, and small
readers of its admin API (shared by test_admin_api, test_admin_cli, test_admin_openapi)."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.server_utils import PYTHON, free_port, running

TOKEN = "admin-test-token-0123456789"
MAX_FIELD_BYTES = 8 << 20


def serve_cmd(model: Path, port: int, admin_port: int, state_dir: Path) -> list[str]:
    return [
        PYTHON, "-m", "lokiserve.cli", "serve", str(model),
        "--port", str(port), "--admin-port", str(admin_port), "--state-dir", str(state_dir),
        "--max-field-bytes", str(MAX_FIELD_BYTES),
        "--dtype", "float32", "--enforce-eager", "--enable-prefix-caching",
    ]


class Server:
    def __init__(self, model: Path, state_dir: Path, log: Path):
        self.model, self.state_dir, self.log = model, state_dir, log
        self.port, self.admin_port = free_port(), free_port()
        self.admin = f"http://127.0.0.1:{self.admin_port}"
        self.api = f"http://127.0.0.1:{self.port}/v1"
        self.name = Path(model).resolve().name  # the served model name: the folder's name by default

    def context(self):
        return running(
            serve_cmd(self.model, self.port, self.admin_port, self.state_dir),
            f"{self.admin}/healthz",
            self.log,
            env={"LOKISERVE_ADMIN_TOKEN": TOKEN},
        )

    def http(self, auth: bool = True) -> httpx.Client:
        headers = {"Authorization": f"Bearer {TOKEN}"} if auth else {}
        return httpx.Client(base_url=self.admin, headers=headers, timeout=60)

    def complete_ids(self, prompt_ids: list[int], max_tokens: int = 6) -> list[int]:
        """Greedy completion of a token-id prompt, returned as token ids."""
        r = httpx.post(
            f"{self.api}/completions",
            json={"model": self.name, "prompt": prompt_ids, "max_tokens": max_tokens, "temperature": 0,
                  "logprobs": 1, "return_tokens_as_token_ids": True, "ignore_eos": True},
            timeout=120,
        )
        r.raise_for_status()
        return [int(t.split(":")[1]) for t in r.json()["choices"][0]["logprobs"]["tokens"]]


def listing(admin) -> dict:
    r = admin.get("/memory/fields")
    assert r.status_code == 200, r.text
    return r.json()


def checksums(admin) -> dict[str, tuple[str, str]]:
    return {f["name"]: (f["state"], f["sha256"]) for f in listing(admin)["fields"]}
