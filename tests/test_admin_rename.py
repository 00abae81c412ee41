"""A field file names the field it was made for, against the real server:

* onto a non-empty field of another name it is refused (409
  ``field_name_mismatch``, naming both) and nothing changes, by PUT and by a
  transaction's stage; ``allow_rename=true`` loads it, and the field is then
  shown by the file's name;
* into an empty (zeroed) field it brings its name: the listing, GET, the
  export and the manifest show it, the field is found by it, and its index and
  config name still work.
"""

from __future__ import annotations

import base64
import json

import pytest

from lokiserve.memory import field_to_bytes, read_field
from tests.admin_utils import serving, checksums, listing
from tests.test_vllm_engine import checkpoint  # noqa: F401

pytestmark = pytest.mark.engine
OCTET = {"Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module")
def server(checkpoint, tmp_path_factory):  # noqa: F811
    yield from serving(checkpoint, tmp_path_factory)


@pytest.fixture
def admin(server):
    with server.http() as client:
        yield client


def renamed(data: bytes, name: str) -> bytes:
    """The same field file, made for field ``name``."""
    field = read_field(data)
    field.name = name
    return field_to_bytes(field)


def test_a_file_made_for_another_field_is_refused_unless_allowed(admin):
    before = listing(admin)
    first, second = before["fields"][0], before["fields"][1]  # geography, elements in the demo
    original = admin.get(f"/memory/fields/{first['name']}/file").content
    other = admin.get(f"/memory/fields/{second['name']}/file").content
    assert read_field(other).name == second["name"]

    r = admin.put(f"/memory/fields/{first['name']}", content=other, headers=OCTET)
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == "field_name_mismatch"
    assert repr(first["name"]) in error["message"] and repr(second["name"]) in error["message"]
    stage = admin.post("/memory/transactions", json={"changes": [
        {"field": first["name"], "file_b64": base64.b64encode(other).decode()}]})
    assert stage.status_code == 409 and stage.json()["error"]["code"] == "field_name_mismatch", stage.text
    digits = admin.put(f"/memory/fields/{first['name']}", content=renamed(other, "7"), headers=OCTET)
    assert digits.status_code == 422 and digits.json()["error"]["code"] == "bad_field_name"
    assert listing(admin) == before  # nothing changed, no version bump

    r = admin.put(f"/memory/fields/{first['name']}", params={"allow_rename": "true"}, content=other, headers=OCTET)
    assert r.status_code == 200, r.text
    assert r.json()["sha256"] == second["sha256"] and r.json()["name"] == second["name"]
    assert admin.get(f"/memory/fields/{second['name']}").json()["id"] == second["id"]  # a config name is its own field
    assert admin.get("/memory/fields/0").json()["name"] == second["name"]

    back = admin.put("/memory/fields/0", content=original, headers=OCTET)  # shown as the other field now: refused
    assert back.status_code == 409 and back.json()["error"]["code"] == "field_name_mismatch"
    back = admin.put("/memory/fields/0", params={"allow_rename": "1"}, content=original, headers=OCTET)
    assert back.status_code == 200, back.text
    assert checksums(admin) == checksums_of(before)
    assert listing(admin)["fields"][0]["name"] == first["name"]


def checksums_of(body: dict) -> dict[str, tuple[str, str]]:
    return {f["name"]: (f["state"], f["sha256"]) for f in body["fields"]}


def test_an_empty_field_takes_the_name_of_the_file_loaded_into_it(server, admin):
    before = listing(admin)
    slot = before["fields"][-1]  # reserve in the demo (shipped empty)
    original = admin.get(f"/memory/fields/{slot['name']}/file").content
    contents = admin.get(f"/memory/fields/{before['fields'][0]['name']}/file").content
    try:
        assert admin.post(f"/memory/fields/{slot['name']}/zero").status_code == 200
        r = admin.put(f"/memory/fields/{slot['name']}", content=renamed(contents, "creatures"), headers=OCTET)
        assert r.status_code == 200, r.text
        assert r.json()["name"] == "creatures" and r.json()["state"] == "active"
        shown = listing(admin)
        assert [f["name"] for f in shown["fields"]] == [f["name"] for f in before["fields"][:-1]] + ["creatures"]
        for field_id in ("creatures", slot["name"], str(slot["id"])):
            assert admin.get(f"/memory/fields/{field_id}").json() == shown["fields"][-1], field_id
        export = admin.get("/memory/fields/creatures/file")
        assert read_field(export.content).name == "creatures"
        assert 'filename="creatures.safetensors"' in export.headers["content-disposition"]
        assert admin.put("/memory/fields/creatures", content=export.content, headers=OCTET).json() == shown["fields"][-1]
        manifest = json.loads((server.state_dir / "manifest.json").read_text())
        assert manifest["fields"][slot["name"]]["name"] == "creatures"  # what a restart restores

        r = admin.put("/memory/fields/creatures", content=renamed(contents, "plants"), headers=OCTET)
        assert r.status_code == 409 and "'creatures'" in r.json()["error"]["message"]  # non-empty now
        assert admin.post("/memory/fields/creatures/zero").json()["name"] == "creatures"  # zeroing keeps the name
    finally:  # the original (empty in the demo) brings its own name back
        r = admin.put(f"/memory/fields/{slot['id']}", content=original, headers=OCTET,
                      params={"allow_rename": "true"})
    assert r.status_code == 200 and r.json()["name"] == slot["name"], r.text
    assert checksums(admin) == checksums_of(before)
