"""Admin settings refuse unsafe setups at start; token handling (no engine needed)."""

import stat

import pytest
from pydantic import ValidationError

from lokiserve.server.auth import resolve_token, token_matches
from lokiserve.server.settings import AdminSettings, is_loopback_host


def settings(tmp_path, **over):
    base = dict(memory_dir=tmp_path, state_dir=tmp_path / "state")
    base.update(over)
    return AdminSettings(**base)


def test_loopback_hosts():
    assert all(is_loopback_host(h) for h in ("127.0.0.1", "127.9.9.9", "::1", "localhost"))
    assert not any(is_loopback_host(h) for h in ("0.0.0.0", "10.0.0.1", "example.com", ""))


def test_remote_admin_refused_unless_explicit(tmp_path):
    with pytest.raises(ValidationError, match="non-loopback"):
        settings(tmp_path, admin_host="0.0.0.0")
    assert settings(tmp_path, admin_host="0.0.0.0", allow_remote_admin=True).admin_host == "0.0.0.0"


@pytest.mark.parametrize("over, words", [
    (dict(admin_token="short"), "at least 16"),
    (dict(admin_port=0), "admin_port"),
    (dict(admin_port=70000), "admin_port"),
    (dict(max_field_bytes=10), "max_field_bytes"),
])
def test_bad_values_refused(tmp_path, over, words):
    with pytest.raises(ValidationError, match=words):
        settings(tmp_path, **over)


def test_missing_memory_dir_refused(tmp_path):
    with pytest.raises(ValidationError, match="does not exist"):
        settings(tmp_path, memory_dir=tmp_path / "nope")


def test_generated_token_is_private_and_env_token_wins(tmp_path, monkeypatch):
    monkeypatch.delenv("LOKISERVE_ADMIN_TOKEN", raising=False)
    token, path = resolve_token(settings(tmp_path))
    assert len(token) >= 32 and path.read_text().strip() == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    given, none = resolve_token(settings(tmp_path, admin_token="x" * 20))
    assert given == "x" * 20 and none is None


def test_token_file_too_short_refused(tmp_path):
    f = tmp_path / "tok"
    f.write_text("abc\n")
    with pytest.raises(ValueError, match="shorter than 16"):
        resolve_token(settings(tmp_path, admin_token_file=f))


def test_bearer_comparison():
    assert token_matches("Bearer " + "t" * 20, "t" * 20)
    for header in (None, "", "t" * 20, "Basic " + "t" * 20, "Bearer " + "t" * 19, "bearer " + "t" * 20):
        assert not token_matches(header, "t" * 20)


def test_serve_refuses_a_directory_without_a_model(tmp_path, capsys):
    from lokiserve.cli import main

    assert main(["serve", str(tmp_path)]) == 2
    assert "no config.json" in capsys.readouterr().err


def test_unknown_flags_are_refused_outside_serve(capsys):
    from lokiserve.cli import main

    with pytest.raises(SystemExit):
        main(["eval", "--no-such-flag"])
    assert "unrecognized arguments" in capsys.readouterr().err
