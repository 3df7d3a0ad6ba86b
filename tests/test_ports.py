"""The tests' servers get ports no outgoing connection and no other xdist worker can take."""

from __future__ import annotations

import socket

from tests import ports


def test_ports_taken_one_after_the_other_differ_and_lie_below_the_ephemeral_range() -> None:
    taken = [ports.free_port() for _ in range(3)]
    assert len(set(taken)) == 3
    with open("/proc/sys/net/ipv4/ip_local_port_range") as ranges:
        first_ephemeral = int(ranges.read().split()[0])
    assert all(port in ports._slice() and port < first_ephemeral for port in taken)


def test_a_port_something_listens_on_is_never_given_out() -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", ports.free_port()))
    busy.listen()
    try:
        given = {ports.free_port() for _ in range(len(ports._PORTS))}
        assert busy.getsockname()[1] not in given
    finally:
        busy.close()
