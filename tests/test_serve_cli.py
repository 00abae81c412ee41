"""``lokiserve serve`` argument handling, as a new user types it: flags in
any order, a stable model name, one-line configuration errors (no engine starts)."""

from __future__ import annotations

import pytest

from lokiserve.paths import default_model_dir
from lokiserve.server.launcher import served_model_name, split_model

DEMO = str(default_model_dir())


@pytest.mark.parametrize("argv, model, rest", [
    (["--data-parallel-size", "2"], None, ["--data-parallel-size", "2"]),
    (["--data-parallel-size", "2", DEMO], DEMO, ["--data-parallel-size", "2"]),
    ([DEMO, "--dtype", "float32", "--enforce-eager"], DEMO, ["--dtype", "float32", "--enforce-eager"]),
    (["--enforce-eager", DEMO, "--max-model-len", "256"], DEMO, ["--enforce-eager", "--max-model-len", "256"]),
    (["--model", DEMO, "--dtype=float32"], DEMO, ["--dtype=float32"]),
    (["--model=" + DEMO, "--no-enable-prefix-caching"], DEMO, ["--no-enable-prefix-caching"]),
])
def test_the_model_dir_is_found_among_vllm_flags_in_any_order(argv, model, rest):
    assert split_model(argv) == (model, rest)


def test_served_model_name_is_the_folder_name_unless_given():
    assert served_model_name(DEMO, []) == "demo"
    assert served_model_name("memories/demo/", ["--dtype", "float32"]) == "demo"
    assert served_model_name(DEMO, ["--served-model-name", "kb"]) == "kb"
    assert served_model_name(DEMO, ["--served-model-name=kb2"]) == "kb2"


@pytest.mark.parametrize("env, argv, words", [
    ({"LOKISERVE_ADMIN_TOKEN": "short"}, [], "at least 16 characters"),
    ({}, ["--admin-host", "0.0.0.0"], "--allow-remote-admin"),
    ({}, ["--memory-dir", "/no/such/folder"], "does not exist"),
])
def test_configuration_errors_are_one_line_and_exit_2(env, argv, words, monkeypatch, capsys, tmp_path):
    from lokiserve.cli import main

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert main(["serve", "--data-parallel-size", "2", DEMO, "--state-dir", str(tmp_path / "s"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lokiserve serve: error:") and words in err and len(err.splitlines()) == 1, err
    assert "Traceback" not in err


@pytest.mark.parametrize("flag, what", [("--admin-port", "the admin API"), ("--port", "the OpenAI API")])
def test_a_port_in_use_is_one_line_and_exit_2_before_the_engine(flag, what, capsys, tmp_path):
    """Both ports are bound before the engine loads: one taken is said at once
    (the admin port used to be bound only after the engine had loaded, so a
    port that looked free at launch could be taken meanwhile)."""
    import socket
    import time

    from lokiserve.cli import main
    from lokiserve.testing import free_port

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = {"--port": str(free_port()), "--admin-port": str(free_port()), flag: str(port)}
        t = time.monotonic()
        rc = main(["serve", DEMO, "--state-dir", str(tmp_path / "s"), *[w for kv in ports.items() for w in kv]])
        took = time.monotonic() - t
    assert rc == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("lokiserve serve:")]
    assert len(err) == 1 and f"cannot listen on {what} 127.0.0.1:{port}" in err[0] and flag in err[0], err
    assert "address already in use" in err[0]
    assert took < 60, took  # no engine was started


def test_a_flag_value_is_never_taken_for_the_model(capsys, tmp_path, monkeypatch):
    """``serve --data-parallel-size 2 DIR_WITHOUT_MODEL`` names the directory, not "2"."""
    from lokiserve.cli import main

    assert main(["serve", "--data-parallel-size", "2", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path} has no config.json" in err and "2 has no config.json" not in err


def test_the_venvs_vllm_command_runs():
    """``scripts/setup.sh`` makes ``.venv/bin/vllm`` work on the CPU build
    (its own console script died with PackageNotFoundError: vllm)."""
    import subprocess
    import sys
    from pathlib import Path

    vllm = Path(sys.executable).parent / "vllm"
    out = subprocess.run([str(vllm), "--version"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1][:1].isdigit(), out.stdout
    assert "PackageNotFoundError" not in out.stderr
