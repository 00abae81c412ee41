"""`lokiserve fields` (lokiserve/admin_cli.py) against one real `lokiserve serve`.

The CLI runs as a subprocess, as an operator runs it; the admin API read
with httpx is the oracle. Every test leaves the fields as it found them.
"""

from __future__ import annotations

import json
import re
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from lokiserve.memory import read_field
from tests.engine_utils import DEMO, demo_available
from tests.server_utils import free_port
from tests.admin_utils import serving, TOKEN
from tests.test_vllm_engine import checkpoint  # noqa: F401

pytestmark = pytest.mark.engine
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def server(checkpoint, tmp_path_factory):  # noqa: F811
    yield from serving(checkpoint, tmp_path_factory)


@pytest.fixture(scope="module")
def token_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("token") / "admin-token"
    path.write_text(TOKEN + "\n")
    return path


@pytest.fixture
def cli(server, token_file):
    """Run ``lokiserve fields ARGS`` against the server (token from a file
    unless ``token_file=None``; ``env`` adds environment variables)."""

    def run(*args: str, token_file: Path | None = token_file, env: dict | None = None, url: str | None = None):
        flags = ["--admin-url", url or server.admin]
        if token_file is not None:
            flags += ["--token-file", str(token_file)]
        full_env = {k: v for k, v in os.environ.items() if k != "LOKISERVE_ADMIN_TOKEN"} | (env or {})
        cmd = [sys.executable, "-m", "lokiserve.cli", "fields", *args, *flags]
        return subprocess.run(cmd, check=False, capture_output=True, text=True, env=full_env, timeout=120)

    return run


def api(server, path: str = "/memory/fields") -> dict:
    r = httpx.get(f"{server.admin}{path}", headers=AUTH, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def ok(result) -> str:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return result.stdout


def failed(result, code: int = 1) -> str:
    """The one-line error message of a failed run (no traceback)."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("lokiserve fields: error: "), result.stderr
    return lines[-1]


# --------------------------------------------------------------------------- reads


def test_list_prints_a_table_and_json(cli, server):
    listing = api(server)
    assert json.loads(ok(cli("list", "--json"))) == listing
    lines = ok(cli("list")).splitlines()
    assert lines[0] == f"memory version {listing['version']}"
    assert lines[1].split() == ["ID", "NAME", "STATE", "VERSION", "SHA256", "SOURCE", "UPDATED_AT"]
    assert len(lines) == 2 + len(listing["fields"])
    for line, field in zip(lines[2:], listing["fields"]):
        cells = line.split()
        assert cells[:5] == [str(field["id"]), field["name"], field["state"], str(field["version"]), field["sha256"][:12]]


def test_show_by_name_and_by_index(cli, server):
    field = api(server)["fields"][1]
    assert json.loads(ok(cli("show", field["name"], "--json"))) == field
    assert json.loads(ok(cli("show", "1", "--json"))) == field
    shown = dict(line.split(None, 1) for line in ok(cli("show", field["name"])).splitlines())
    assert shown["name"] == field["name"] and shown["sha256"] == field["sha256"] and shown["state"] == field["state"]


def test_token_from_the_environment_and_the_flag_wins(cli, server, tmp_path):
    assert json.loads(ok(cli("list", "--json", token_file=None, env={"LOKISERVE_ADMIN_TOKEN": TOKEN}))) == api(server)
    ok(cli("list", env={"LOKISERVE_ADMIN_TOKEN": "wrong-token-0123456789"}))  # --token-file given: it wins
    wrong = tmp_path / "wrong"
    wrong.write_text("wrong-token-0123456789\n")
    message = failed(cli("list", token_file=wrong, env={"LOKISERVE_ADMIN_TOKEN": TOKEN}))
    assert message == "lokiserve fields: error: 401 unauthorized: missing or invalid bearer token"


# --------------------------------------------------------------------------- changes


def test_export_then_put_back_is_a_noop(cli, server, tmp_path):
    before = api(server)
    name = before["fields"][0]["name"]
    out = tmp_path / "exported.safetensors"
    report = json.loads(ok(cli("export", name, str(out), "--json")))
    assert report["sha256"] == before["fields"][0]["sha256"] == read_field(out).sha256()
    assert report["bytes"] == out.stat().st_size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exported.safetensors"]  # no temp file left
    put = json.loads(ok(cli("put", name, str(out), "--json")))
    assert put == before["fields"][0]
    assert api(server) == before  # same version: nothing changed

    data = out.read_bytes()
    assert "exists; pass --force" in failed(cli("export", name, str(out)))
    assert out.read_bytes() == data
    assert "wrote" in ok(cli("export", "0", str(out), "--force"))
    assert read_field(out).sha256() == before["fields"][0]["sha256"]


def test_zero_then_put_the_export_back_restores_the_checksum(cli, server, tmp_path):
    before = api(server)
    field = next(f for f in before["fields"] if f["state"] == "active")
    out = tmp_path / "field.safetensors"
    ok(cli("export", field["name"], str(out)))
    zeroed = json.loads(ok(cli("zero", field["name"], "--json", "--if-match", field["sha256"])))
    try:
        assert zeroed["state"] == "zeroed" and zeroed["version"] == before["version"] + 1
        assert api(server, f"/memory/fields/{field['name']}")["state"] == "zeroed"
        message = failed(cli("put", field["name"], str(out), "--if-match", field["sha256"]))
        assert message.startswith("lokiserve fields: error: 412 precondition_failed: ")
        shown = dict(line.split(None, 1) for line in ok(cli("put", field["name"], str(out), "--if-match", zeroed["sha256"])).splitlines())
        assert shown["state"] == "active" and shown["sha256"] == field["sha256"]
    finally:
        httpx.put(f"{server.admin}/memory/fields/{field['name']}", content=out.read_bytes(), timeout=60,
                  headers={**AUTH, "Content-Type": "application/octet-stream"})
    after = api(server)
    assert [(f["state"], f["sha256"]) for f in after["fields"]] == [(f["state"], f["sha256"]) for f in before["fields"]]
    assert after["fields"][field["id"]]["source"] == out.name  # the upload is labelled with the file's name


def test_put_a_server_side_path(cli, server, tmp_path):
    message = failed(cli("put", "0", "--server-path", "no/such.safetensors"))
    assert message.startswith("lokiserve fields: error: 404 file_not_found: ")
    message = failed(cli("put", "0", "--server-path", "../../etc/passwd"))
    assert message.startswith("lokiserve fields: error: 403 path_outside_memory_dir: ")
    if not demo_available():
        pytest.skip("the shipped edit needs the demo model")
    edit = min((DEMO / "edits").glob("*.safetensors"))
    name = read_field(edit).name
    before = api(server)
    original = tmp_path / "original.safetensors"
    ok(cli("export", name, str(original)))
    relative = str(edit.relative_to(DEMO))
    try:
        put = json.loads(ok(cli("put", name, "--server-path", relative, "--json")))
        assert put["sha256"] == read_field(edit).sha256() and put["source"] == relative
    finally:
        ok(cli("put", name, str(original)))
    assert [f["sha256"] for f in api(server)["fields"]] == [f["sha256"] for f in before["fields"]]


# --------------------------------------------------------------------------- failures


def test_unknown_field_is_the_servers_404(cli, server, tmp_path):
    before = api(server)
    for args in (["show", "nope"], ["zero", "99"], ["put", "nope", "--server-path", "x.safetensors"],
                 ["export", "nope", str(tmp_path / "out.safetensors")]):
        message = failed(cli(*args))
        assert message.startswith("lokiserve fields: error: 404 unknown_field: "), (args, message)
    assert not list(tmp_path.iterdir())  # a failed export writes nothing
    assert api(server) == before


def test_unreachable_url_is_a_clear_message(cli, tmp_path):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    for args in (["list"], ["export", "0", str(tmp_path / "out.safetensors")]):
        message = failed(cli(*args, url=url))
        assert message == f"lokiserve fields: error: cannot connect to {url}: connection refused " \
                          "(is `lokiserve serve` running there?)"
    assert not list(tmp_path.iterdir())


def test_missing_token_and_bad_usage_are_exit_2(cli, tmp_path):
    message = failed(cli("list", token_file=None), code=2)
    assert "no admin token" in message and "--token-file" in message and "LOKISERVE_ADMIN_TOKEN" in message
    empty = tmp_path / "empty"
    empty.write_text("\n")
    assert "is empty" in failed(cli("list", token_file=empty), code=2)
    assert "cannot read token file" in failed(cli("list", token_file=tmp_path / "absent"), code=2)
    assert "exactly one of FILE or --server-path" in failed(cli("put", "0"), code=2)
    assert failed(cli("put", "0", str(tmp_path / "absent.safetensors"))).startswith("lokiserve fields: error: cannot read")
    r = cli("list", "--timeout", "0")
    assert r.returncode == 2 and "positive number" in r.stderr


def test_every_action_and_flag_has_help():
    from lokiserve.admin_cli import build_parser

    parser = build_parser()
    fields = next(a for a in parser._subparsers._group_actions[0].choices.values())
    actions = fields._subparsers._group_actions[0].choices
    assert set(actions) == {"list", "show", "put", "zero", "export"}
    for name, action in actions.items():
        for option in action._actions:
            assert option.help, (name, option.dest)


def test_vllm_bench_serve_runs_against_lokiserve(server):
    """The benchmark users reach for, from the venv, against `lokiserve serve`."""
    vllm = Path(sys.executable).parent / "vllm"
    cmd = [str(vllm), "bench", "serve", "--backend", "vllm", "--base-url", f"http://127.0.0.1:{server.port}",
           "--model", server.name, "--tokenizer", str(server.model), "--dataset-name", "random",
           "--random-input-len", "16", "--random-output-len", "4", "--num-prompts", "8", "--ignore-eos",
           "--seed", "0"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    assert re.search(r"Successful requests:\s+8\b", r.stdout), r.stdout[-3000:]
    assert "Failed requests" not in r.stdout or re.search(r"Failed requests:\s+0\b", r.stdout), r.stdout[-3000:]


def test_a_file_made_for_another_field_needs_allow_rename(cli, server, tmp_path):
    fields = api(server)["fields"]
    if len(fields) < 2 or fields[0]["state"] != "active":
        pytest.skip("needs two fields, the first active")
    first, second = fields[0]["name"], fields[1]["name"]
    saved, other = tmp_path / "first.safetensors", tmp_path / "second.safetensors"
    ok(cli("export", first, str(saved)))
    ok(cli("export", second, str(other)))
    before = api(server)
    message = failed(cli("put", first, str(other)))
    assert "409" in message and first in message and second in message, message
    assert api(server) == before  # refused: nothing changed
    ok(cli("put", first, str(other), "--allow-rename"))
    assert api(server, "/memory/fields/0")["sha256"] == fields[1]["sha256"]
    ok(cli("put", "0", str(saved), "--allow-rename"))  # back as it was, under its own name
    assert api(server, "/memory/fields/0")["sha256"] == fields[0]["sha256"]
    assert api(server, "/memory/fields/0")["name"] == first
