"""The admin API's OpenAPI schema, against the real `lokiserve serve`:

* /openapi.json and /docs need the token (/healthz does not);
* every route declares its body, its error statuses (``ErrorBody``) and its
  success response;
* a wrong method on a known path is a 405 naming the allowed methods;
* schemathesis, driven by the served schema, finds no 5xx and no status the
  route does not declare; the fields it changed (it may zero one) are put
  back from their exports, so the checksums end as they began.
"""

from __future__ import annotations

import json
import subprocess
import sys
from urllib.parse import unquote, urlsplit

import httpx
import pytest

from tests.admin_utils import serving, TOKEN
from tests.test_vllm_engine import checkpoint  # noqa: F401

pytestmark = pytest.mark.engine
AUTH = {"Authorization": f"Bearer {TOKEN}"}
OCTET = {"Content-Type": "application/octet-stream"}
MAX_FUZZ_REQUESTS = 600  # schemathesis chains stage -> get/commit/delete on the transaction routes

# What each route can answer besides 200: the README's table.
DECLARED_ERRORS = {
    ("get", "/healthz"): {503},
    ("get", "/metrics"): {401},
    ("get", "/memory/replicas"): {401},
    ("get", "/memory/fields"): {401},
    ("get", "/memory/fields/{field_id}"): {401, 404},
    ("put", "/memory/fields/{field_id}"): {400, 401, 403, 404, 409, 412, 413, 415, 422},
    ("post", "/memory/fields/{field_id}/zero"): {401, 404, 412},
    ("post", "/memory/fields/{field_id}/facts"): {400, 401, 404, 409, 413, 422},
    ("get", "/memory/fields/{field_id}/file"): {401, 404},
    ("post", "/memory/transactions"): {400, 401, 403, 404, 409, 413, 415, 422, 429},
    ("get", "/memory/transactions/{tx_id}"): {401, 404},
    ("post", "/memory/transactions/{tx_id}/commit"): {401, 404, 409, 410},
    ("delete", "/memory/transactions/{tx_id}"): {401, 404, 409},
}


@pytest.fixture(scope="module")
def server(checkpoint, tmp_path_factory):  # noqa: F811
    yield from serving(checkpoint, tmp_path_factory)


@pytest.fixture(scope="module")
def schema(server) -> dict:
    r = httpx.get(f"{server.admin}/openapi.json", headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()


def field_states(server) -> dict[str, tuple[str, str]]:
    r = httpx.get(f"{server.admin}/memory/fields", headers=AUTH, timeout=60)
    assert r.status_code == 200, r.text
    return {f["name"]: (f["state"], f["sha256"]) for f in r.json()["fields"]}


def test_schema_and_docs_need_the_token(server):
    for path in ("/openapi.json", "/docs"):
        for headers in ({}, {"Authorization": "Bearer " + "x" * len(TOKEN)}, {"Authorization": f"Basic {TOKEN}"}):
            r = httpx.get(f"{server.admin}{path}", headers=headers)
            assert r.status_code == 401, (path, headers)
            assert r.json()["error"]["code"] == "unauthorized"
            assert r.headers["www-authenticate"] == "Bearer"
    r = httpx.get(f"{server.admin}/openapi.json", headers=AUTH)
    assert r.status_code == 200 and r.json()["openapi"].startswith("3.")
    r = httpx.get(f"{server.admin}/docs", headers=AUTH)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "SwaggerUIBundle" in r.text and '"spec"' in r.text  # the schema is in the page: no unauthenticated fetch
    assert httpx.get(f"{server.admin}/healthz").json() == {"status": "ok", "replicas": 1}
    assert httpx.get(f"{server.admin}/redoc", headers=AUTH).status_code == 404


def test_every_route_declares_its_body_errors_and_response(schema):
    operations = {(m, p): op for p, ops in schema["paths"].items() for m, op in ops.items()}
    assert set(operations) == set(DECLARED_ERRORS)
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    for (method, path), op in operations.items():
        statuses = {int(s) for s in op["responses"]}
        assert statuses == {200} | DECLARED_ERRORS[(method, path)], (method, path)
        assert op["responses"]["200"].get("content"), (method, path)  # a schema for every success
        for status in statuses - {200}:
            # /healthz's 503 is a Health body (status "unhealthy" and why); every other error an ErrorBody
            want = {"$ref": "#/components/schemas/Health"} if path == "/healthz" else error_ref
            assert op["responses"][str(status)]["content"]["application/json"]["schema"] == want, (method, path)
        assert ("security" in op) == (path != "/healthz"), (method, path)
    body = operations[("put", "/memory/fields/{field_id}")]["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/octet-stream"]["schema"] == {"type": "string", "format": "binary"}
    path_schema = body["content"]["application/json"]["schema"]
    assert path_schema["required"] == ["path"] and path_schema["additionalProperties"] is False
    assert schema["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http", "scheme": "bearer", "description": schema["components"]["securitySchemes"]["HTTPBearer"]["description"]}
    assert "HTTPValidationError" not in schema["components"]["schemas"]  # validation errors are 400 ErrorBody


@pytest.mark.parametrize("auth", [True, False])
def test_wrong_method_on_a_known_path_is_405_with_allow(server, schema, auth):
    headers = AUTH if auth else {}
    cases = [("DELETE", "/memory/fields/0"), ("PATCH", "/memory/fields/geography"), ("PUT", "/memory/fields"),
             ("GET", "/memory/fields/0/zero"), ("POST", "/memory/fields/0/file"), ("POST", "/healthz"),
             ("DELETE", "/metrics"), ("OPTIONS", "/memory/fields/0")]
    templates = {p.replace("{field_id}", "0"): p for p in schema["paths"]}
    for method, url in cases:
        r = httpx.request(method, f"{server.admin}{url}", headers=headers)
        assert r.status_code == 405, (method, url, r.status_code)
        assert r.json()["error"]["code"] == "http_error"
        template = templates[url.replace("geography", "0")]
        assert r.headers["allow"] == ", ".join(sorted(m.upper() for m in schema["paths"][template])), (method, url)


def test_hostile_ids_and_bodies_get_declared_errors_and_change_nothing(server, schema):
    """Inputs that once answered 500, a redirect or another field: each is now
    an ``ErrorBody`` with a status its route declares."""
    before = field_states(server)
    as_json = {**AUTH, "Content-Type": "application/json"}
    cases = [
        ("GET", "/memory/fields/%C2%B2", AUTH, None, 404),  # "²".isdigit(), int("²") fails
        ("POST", "/memory/fields/%D9%A1/zero", AUTH, None, 404),  # Arabic-Indic "1" is no index
        ("GET", "/memory/fields/" + "9" * 5000, AUTH, None, 404),  # over int()'s digit limit
        ("PUT", "/memory/fields/0", as_json, b"[" * 60000, 400),  # nested past the recursion limit
        ("PUT", "/memory/fields/0", as_json, json.dumps({"path": "a" * 300}).encode(), 400),  # name too long
        ("PUT", "/memory/fields/0", as_json, b'{"path": "\\ud800"}', 400),  # lone surrogate
        ("PUT", "/memory/fields/0", as_json, b'{"path": 5}', 400),
        ("PUT", "/memory/fields/0", as_json, b"\xff\xfe", 400),
        ("PUT", "/memory/fields/0", {**AUTH, **OCTET}, b"", 400),
        ("PUT", "/memory/fields/0", {**AUTH, "Content-Type": "multipart/form-data; boundary=x"}, b"--x--", 415),
        ("PUT", "/memory/fields/0%2Ffile", {**AUTH, **OCTET}, b"x", 404),  # not a 405 from the file route
        ("GET", "/memory/fields/0%2Ffile", AUTH, None, 404),  # not field 0's file
        ("GET", "/memory/fields/", AUTH, None, 404),  # no slash redirect
    ]
    for method, url, headers, body, status in cases:
        r = httpx.request(method, f"{server.admin}{url}", headers=headers, content=body, timeout=60)
        assert r.status_code == status, (method, url[:60], r.status_code, r.text[:300])
        assert set(r.json()["error"]) == {"code", "message"}
        template = match_operation(schema, method.lower(), f"{server.admin}{url}")
        if template is not None and method.lower() in schema["paths"][template]:
            assert status in DECLARED_ERRORS[(method.lower(), template)], (method, url[:60])
    assert field_states(server) == before
    assert server.proc.poll() is None


def match_operation(schema: dict, method: str, url: str) -> str | None:
    """The schema path that ``method url`` is routed to (segments split before
    percent-decoding, so an id with an encoded '/' stays one segment)."""
    segments = urlsplit(url).path.split("/")
    for template in schema["paths"]:
        parts = template.split("/")
        if len(parts) == len(segments) and all(
                p.startswith("{") or p == unquote(s) for p, s in zip(parts, segments)):
            return template
    return None


def test_schemathesis_finds_no_server_error_and_no_undeclared_status(server, schema, tmp_path):
    before = field_states(server)
    originals = {name: httpx.get(f"{server.admin}/memory/fields/{name}/file", headers=AUTH, timeout=60).content
                 for name in before}
    har = tmp_path / "fuzz.har"
    cmd = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{server.admin}/openapi.json",
        "-H", f"Authorization: Bearer {TOKEN}",
        "--checks", "all",
        # A schema cannot say which bytes are a valid field file or which
        # sha256 is current, so a schema-valid PUT or If-Match can be refused.
        "--exclude-checks", "positive_data_acceptance",
        "--max-examples", "8", "--seed", "1", "--generation-database", "none", "--workers", "1",
        "--request-timeout", "60", "--no-color", "--report", "har", "--report-har-path", str(har),
    ]
    try:
        run = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    finally:  # put back every field the fuzzer changed (e.g. zeroed), from its export
        changed = [name for name, state in field_states(server).items() if state != before[name]]
        for name in changed:
            r = httpx.put(f"{server.admin}/memory/fields/{name}", content=originals[name],
                          headers={**AUTH, **OCTET}, timeout=60)
            assert r.status_code == 200, r.text
    assert field_states(server) == before
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]

    entries = json.loads(har.read_text())["log"]["entries"]
    assert 50 <= len(entries) <= MAX_FUZZ_REQUESTS, len(entries)
    seen = set()
    for entry in entries:
        method, url, status = entry["request"]["method"].lower(), entry["request"]["url"], entry["response"]["status"]
        template = match_operation(schema, method, url)
        assert status < 500, (method, url, status)
        if template is not None and method in schema["paths"][template]:
            assert status == 200 or status in DECLARED_ERRORS[(method, template)], (method, url, status)
            seen.add((method, template))
        elif template is not None:  # a method the path does not have
            headers = {h["name"].lower(): h["value"] for h in entry["response"]["headers"]}
            assert status == 405 and headers.get("allow"), (method, url, status)
        else:
            assert status == 404, (method, url, status)
    assert seen == set(DECLARED_ERRORS)
    assert server.proc.poll() is None
    print(f"schemathesis: {len(entries)} requests, fields changed and restored: {changed}")
