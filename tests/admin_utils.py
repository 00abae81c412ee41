"""The real `lokiserve serve` process the admin-API tests talk to, and small
readers of its admin API (shared by test_admin_api, test_admin_cli, test_admin_openapi)."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import httpx
import torch
from safetensors.torch import save

from lokiserve.memory import FORMAT, field_to_bytes
from tests.engine_utils import reference

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
    """``extra``: more ``lokiserve serve`` flags; ``env``: more environment variables."""

    def __init__(self, model: Path, state_dir: Path, log: Path, extra: list[str] | None = None,
                 env: dict[str, str] | None = None, timeout: float = 300.0):
        self.model, self.state_dir, self.log = model, state_dir, log
        self.extra, self.env, self.timeout = list(extra or []), dict(env or {}), timeout
        self.pick_ports()
        self.name = Path(model).resolve().name  # the served model name: the folder's name by default

    def pick_ports(self) -> None:
        self.port, self.admin_port = free_port(), free_port()
        self.admin = f"http://127.0.0.1:{self.admin_port}"
        self.api = f"http://127.0.0.1:{self.port}/v1"

    def launch(self) -> tuple[list[str], str]:
        """The command on fresh ports (``running`` calls it again after a port clash)."""
        self.pick_ports()
        return serve_cmd(self.model, self.port, self.admin_port, self.state_dir) + self.extra, f"{self.admin}/healthz"

    def context(self):
        return running(self.launch, log=self.log, env={"LOKISERVE_ADMIN_TOKEN": TOKEN, **self.env},
                       timeout=self.timeout)

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


def serving(model: Path, tmp_path_factory, state_dir: Path | None = None, **kw):
    """A module fixture's body: one real ``lokiserve serve`` of ``model`` for the
    module (``yield from serving(...)``); ``kw`` are ``Server``'s."""
    srv = Server(model, state_dir or tmp_path_factory.mktemp("state"), tmp_path_factory.mktemp("log") / "serve.log",
                 **kw)
    with srv.context() as proc:
        srv.proc = proc
        yield srv


def listing(admin) -> dict:
    r = admin.get("/memory/fields")
    assert r.status_code == 200, r.text
    return r.json()


def checksums(admin) -> dict[str, tuple[str, str]]:
    return {f["name"]: (f["state"], f["sha256"]) for f in listing(admin)["fields"]}


def hostile_requests(admin, checkpoint, tmp_path) -> list[tuple[str, dict, int]]:
    """(label, request kwargs, expected status)."""
    ref = reference(checkpoint)
    good = field_to_bytes(ref.export_field(1))
    tensors = {k: v.clone() for k, v in ref.export_field(1).tensors().items()}
    meta = {"format": FORMAT, "name": ref.field_names[1], "backbone": ref.backbone_hash()}
    first = next(iter(tensors))
    nan = dict(tensors)
    nan[first] = nan[first].clone()
    nan[first][0, 0] = float("nan")
    half = dict(tensors)
    half[first] = half[first].half()
    shape = {k: (v[:, :-1].contiguous() if k.endswith("keys") else v) for k, v in tensors.items()}
    extra = dict(tensors)
    extra["layers.0.bias"] = torch.zeros(3)
    octet = {"Content-Type": "application/octet-stream"}

    def chunked_over_limit():  # no Content-Length: the server must count as it reads
        for _ in range(MAX_FIELD_BYTES // (1 << 20) + 2):
            yield b"\0" * (1 << 20)

    current = listing(admin)["fields"][1]["sha256"]
    (tmp_path / "outside.safetensors").write_bytes(good)
    return [
        ("empty body", dict(method="PUT", url="/memory/fields/1", content=b"", headers=octet), 400),
        ("truncated", dict(method="PUT", url="/memory/fields/1", content=good[: len(good) // 2], headers=octet), 400),
        ("header only", dict(method="PUT", url="/memory/fields/1", content=good[:8], headers=octet), 400),
        ("header bomb", dict(method="PUT", url="/memory/fields/1", content=struct.pack("<Q", 1 << 40) + b"{}", headers=octet), 400),
        ("garbage", dict(method="PUT", url="/memory/fields/1", content=os.urandom(4096), headers=octet), 400),
        ("no metadata", dict(method="PUT", url="/memory/fields/1", content=save(tensors), headers=octet), 400),
        ("wrong format", dict(method="PUT", url="/memory/fields/1", content=save(tensors, metadata={**meta, "format": "x/1"}), headers=octet), 400),
        ("nan", dict(method="PUT", url="/memory/fields/1", content=save(nan, metadata=meta), headers=octet), 422),
        ("fp16", dict(method="PUT", url="/memory/fields/1", content=save(half, metadata=meta), headers=octet), 422),
        ("wrong shape", dict(method="PUT", url="/memory/fields/1", content=save(shape, metadata=meta), headers=octet), 422),
        ("extra tensor", dict(method="PUT", url="/memory/fields/1", content=save(extra, metadata=meta), headers=octet), 422),
        ("wrong backbone", dict(method="PUT", url="/memory/fields/1", content=save(tensors, metadata={**meta, "backbone": "0" * 64}), headers=octet), 409),
        ("huge streamed body", dict(method="PUT", url="/memory/fields/1", content=chunked_over_limit(), headers=octet), 413),
        ("path traversal", dict(method="PUT", url="/memory/fields/1", json={"path": "../../../etc/passwd"}), 403),
        ("absolute path outside", dict(method="PUT", url="/memory/fields/1", json={"path": str(tmp_path / "outside.safetensors")}), 403),
        ("missing path file", dict(method="PUT", url="/memory/fields/1", json={"path": "nope.safetensors"}), 404),
        ("json without path", dict(method="PUT", url="/memory/fields/1", json={"file": "x"}), 400),
        ("json not object", dict(method="PUT", url="/memory/fields/1", content=b"[1,2", headers={"Content-Type": "application/json"}), 400),
        ("bad content type", dict(method="PUT", url="/memory/fields/1", content=good, headers={"Content-Type": "text/plain"}), 415),
        ("unknown id name", dict(method="PUT", url="/memory/fields/nope", content=good, headers=octet), 404),
        ("unknown id index", dict(method="POST", url="/memory/fields/99/zero"), 404),
        ("unknown id get", dict(method="GET", url="/memory/fields/-1"), 404),
        ("bad If-Match", dict(method="PUT", url="/memory/fields/1", content=good, headers={**octet, "If-Match": "0" * 64}), 412),
        ("bad If-Match zero", dict(method="POST", url="/memory/fields/1/zero", headers={"If-Match": current[::-1]}), 412),
        ("missing token", dict(method="PUT", url="/memory/fields/1", content=good, headers={**octet, "Authorization": ""}), 401),
        ("bad token", dict(method="POST", url="/memory/fields/1/zero", headers={"Authorization": "Bearer nope"}), 401),
    ]


def raw_put_declaring(port: int, length: int) -> bytes:
    """A PUT that declares a huge Content-Length but sends almost nothing:
    the server must refuse on the header alone, without waiting for the body."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            f"PUT /memory/fields/1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n".encode() + b"x" * 100
        )
        return sock.recv(4096)
