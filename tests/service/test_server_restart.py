"""A `flowlang serve` process carries on after its PostgreSQL server restarts, with no restart
of its own (docs/scaling.md, "When a connection is lost"): while the server is down `/ready`
says so and webhooks are refused with 503 (nothing kept, the vendor sends them again); once
it is back the process opens its connections again, takes the lead again on its own (no other
process shares the store) and takes and processes webhooks.

The server is one of the test's own, never the one the other tests share."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg

from tests.postgres_server import postgres_server, start_server, stop_server
from tests.service.helpers import (
    FLOW,
    environment,
    signed_headers,
    whatsapp_text,
    write_deployment,
)
from tests.service.process import ServiceProcess


def _post(http: httpx.Client, event_id: str) -> httpx.Response:
    body = json.dumps(whatsapp_text("447700900001", event_id, f"hello {event_id}")).encode()
    return http.post("/webhooks/whatsapp", content=body, headers=signed_headers("whatsapp", body))


def _until(what: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if what():
            return True
        time.sleep(0.05)
    return False


def _processed(url: str, event_id: str) -> bool:
    with psycopg.connect(url) as db:
        row = db.execute("SELECT processed FROM inbound WHERE event_id = %s", (event_id,))
        return row.fetchone() == (1,)


def test_a_service_takes_webhooks_and_leads_again_after_its_postgresql_server_restarts(
    tmp_path: Path,
) -> None:
    with postgres_server() as url:
        service = ServiceProcess(
            FLOW, write_deployment(tmp_path), url, environment(), tmp_path / "serve.log"
        ).start()
        try:
            with httpx.Client(base_url=service.url, timeout=10.0) as http:
                assert _post(http, "wamid.1").status_code == 200
                assert _until(lambda: _processed(url, "wamid.1"))

                stop_server(url)
                ready = http.get("/ready")
                assert ready.status_code == 503 and ready.json()["store"] == "unreachable"
                refused = _post(http, "wamid.2")
                assert refused.status_code == 503 and "Retry-After" in refused.headers

                start_server(url)
                # The vendor sends it again until it is taken (at once, or after a 503 or two
                # while the connections come back).
                assert _until(lambda: _post(http, "wamid.2").status_code == 200)
                assert _until(lambda: _processed(url, "wamid.2")), service.log.read_text()
                assert _post(http, "wamid.3").json() == {
                    "accepted": 1,
                    "duplicates": 0,
                    "dead_letters": 0,
                }
                assert _until(lambda: _processed(url, "wamid.3"))
                ready = http.get("/ready")
                assert (ready.status_code, ready.json()["role"]) == (200, "leader")
            assert service.process is not None and service.process.poll() is None
            with psycopg.connect(url) as db:
                taken = db.execute("SELECT count(*) FROM events WHERE kind = 'lead_taken'")
                assert taken.fetchone() == (2,)  # it took the lead again, the same process
                ids = db.execute("SELECT event_id FROM inbound ORDER BY seq").fetchall()
                assert ids == [("wamid.1",), ("wamid.2",), ("wamid.3",)]  # none lost or twice
        finally:
            service.stop()
