"""The tests' servers get ports no outgoing connection, no other xdist worker and no other test
run on the machine can take."""

from __future__ import annotations

import itertools
import os
import socket
import time
from pathlib import Path

import pytest

from tests import ports


@pytest.fixture(autouse=True)
def _claims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Claims of this test's own, not the machine's."""
    monkeypatch.setattr(ports, "CLAIMS", tmp_path / "claims")
    return tmp_path / "claims"


def _next_is(monkeypatch: pytest.MonkeyPatch, port: int) -> None:
    """`free_port` looks at `port` first."""
    monkeypatch.setattr(ports, "_turn", itertools.count(ports._PORTS.index(port)))


def test_ports_taken_one_after_the_other_differ_and_lie_below_the_ephemeral_range() -> None:
    taken = [ports.free_port() for _ in range(3)]
    assert len(set(taken)) == 3
    with open("/proc/sys/net/ipv4/ip_local_port_range") as ranges:
        first_ephemeral = int(ranges.read().split()[0])
    assert all(port in ports._slice() and port < first_ephemeral for port in taken)


def test_a_port_something_listens_on_is_never_given_out(monkeypatch: pytest.MonkeyPatch) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", ports.free_port()))
    busy.listen()
    try:
        _next_is(monkeypatch, busy.getsockname()[1])
        given = ports.free_port()
        assert given != busy.getsockname()[1] and given in ports._PORTS
    finally:
        busy.close()


def test_a_port_another_test_run_was_given_lately_is_not_given_again(
    monkeypatch: pytest.MonkeyPatch, _claims: Path
) -> None:
    port = ports.free_port()
    (_claims / str(port)).write_text(str(os.getpid() + 1))  # another process's, just now
    _next_is(monkeypatch, port)
    assert ports.free_port() != port
    # A claim older than CLAIM_SECONDS is over: its server has bound the port or never will.
    old = time.time() - ports.CLAIM_SECONDS - 1
    os.utime(_claims / str(port), (old, old))
    _next_is(monkeypatch, port)
    assert ports.free_port() == port
    assert (_claims / str(port)).read_text() == str(os.getpid())  # claimed anew, by this run


def test_a_port_this_run_was_given_may_be_given_again_once_free(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = ports.free_port()
    _next_is(monkeypatch, port)
    assert ports.free_port() == port  # its server is gone: the port is free again


def test_a_servers_own_socket_has_its_port_before_it_listens() -> None:
    sock = ports.listening_socket()
    try:
        port = sock.getsockname()[1]
        assert port > 0
        with socket.socket() as other, pytest.raises(OSError):  # nobody can take it meanwhile
            other.bind(("127.0.0.1", port))
    finally:
        sock.close()


def test_a_server_that_could_not_bind_says_so() -> None:
    assert ports.address_in_use("ERROR: [Errno 98] error while attempting to bind on address")
    assert ports.address_in_use("OSError: [Errno 98] Address already in use")
    assert not ports.address_in_use("ERROR: the store cannot be read")
