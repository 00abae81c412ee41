"""The server-process helpers every server test and benchmark uses
(``lokiserve.testing``), against real processes: a port that another process
took between ``free_port`` and the server's bind is retried on new ports, and
a server that dies for another reason says why."""

from __future__ import annotations

import socket
import sys

import httpx
import pytest

from lokiserve.testing import PortClash, free_port, log_excerpt, running


def http_server(port: int) -> list[str]:
    return [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]


@pytest.fixture
def taken_port():
    """A loopback port another process holds (a listening socket) while the test runs."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def test_a_port_clash_starts_again_on_new_ports(tmp_path, taken_port):
    ports = []

    def launch():  # the first try gets the taken port, the next a free one
        ports.append(free_port() if ports else taken_port)
        return http_server(ports[-1]), f"http://127.0.0.1:{ports[-1]}/"

    with running(launch, log=tmp_path / "server.log", timeout=60) as proc:
        assert httpx.get(f"http://127.0.0.1:{ports[-1]}/", timeout=10).status_code == 200
        assert proc.poll() is None
    clash = taken_port
    assert ports[0] == clash and len(ports) == 2 and ports[1] != clash  # the taken port, then another
    assert proc.poll() is not None  # stopped when the block ended


def test_a_clash_on_every_try_gives_up_with_the_reason(tmp_path, taken_port):
    tries = []

    def launch():
        tries.append(taken_port)
        return http_server(taken_port), f"http://127.0.0.1:{taken_port}/"

    with pytest.raises(PortClash, match="(?i)address already in use"):
        with running(launch, log=tmp_path / "server.log", timeout=60):
            pass
    assert len(tries) == 3


def test_a_death_that_is_no_clash_is_not_retried(tmp_path):
    cmd = [sys.executable, "-c", "import sys; print('ValueError: no model here'); sys.exit(3)"]
    tries = []

    def launch():
        tries.append(cmd)
        return cmd, f"http://127.0.0.1:{free_port()}/"

    with pytest.raises(RuntimeError, match="no model here") as info:
        with running(launch, log=tmp_path / "server.log", timeout=60):
            pass
    assert not isinstance(info.value, PortClash) and "exited with 3" in str(info.value)
    assert len(tries) == 1


def test_the_log_excerpt_shows_the_cause_before_a_noisy_tail(tmp_path):
    """A plain 4 KB tail was all shutdown noise in a CI failure; the cause
    ("address already in use") sat 100 lines higher."""
    log = tmp_path / "serve.log"
    noise = "\n".join(f' - leaked function "f{i}"' for i in range(400))
    log.write_text("INFO start\nERROR:    [Errno 98] address already in use\nINFO shutdown\n" + noise)
    text = log_excerpt(log)
    assert text.startswith("ERROR:    [Errno 98] address already in use")
    assert text.endswith('leaked function "f399"')
