"""The limit on failed sign-ins in a real `flowlang serve`: the front process counts each
client's by the address the client connects from, so one address's failures never limit
another's (the engine process behind it, which every request reaches from the front, counts
nothing), and a client's own `X-Forwarded-For` does not move it to another count."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx

from flowlang.runtime.users import new_token, token_hash
from flowlang.store import SqliteStore
from tests.service.helpers import FLOW, environment, write_deployment
from tests.service.process import ServiceProcess

WRONG = {"Authorization": "Bearer flt_not-a-token"}


def client_from(address: str) -> httpx.Client:
    """A client whose connections come from `address` (any of 127.0.0.0/8 is this host)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=10)


def test_the_front_counts_each_clients_failures_by_its_own_address(tmp_path: Path) -> None:
    token = new_token()
    with SqliteStore(tmp_path / "cc.sqlite") as store:
        store.add_user("alice", "agent", token_hash(token), datetime.now(UTC))
    log = tmp_path / "serve.log"
    server = ServiceProcess(
        FLOW, write_deployment(tmp_path), tmp_path / "cc.sqlite", environment(), log
    ).start()
    presence = f"{server.url}/api/agent/presence"
    alice = {"Authorization": f"Bearer {token}"}
    try:
        with client_from("127.0.0.2") as guesser, client_from("127.0.0.3") as agent:
            for _ in range(10):
                assert guesser.get(presence, headers=WRONG).status_code == 401
            refused = guesser.get(presence, headers=WRONG)
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
            spoofed = guesser.get(presence, headers={**WRONG, "X-Forwarded-For": "203.0.113.9"})
            assert spoofed.status_code == 429
            assert guesser.get(presence, headers=alice).status_code == 429
            assert agent.get(presence, headers=alice).status_code == 200
    finally:
        server.stop()
    assert "10 failed sign-ins from 127.0.0.2 within 0:01:00" in log.read_text("utf-8")
