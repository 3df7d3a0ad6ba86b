"""The security headers (docs/workspace.md, "Security") on every answer of a real `flowlang
serve`: those the front process gives itself (webhooks, handshakes, /health, /ready, /metrics)
as well as those it passes on from the engine process (pages, the API), each header once, and
one `Date`. What the front does is not logged request by request at `--log-level info`."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from flowlang.web.security import HEADERS
from tests.service.helpers import FLOW as MESSAGING
from tests.service.helpers import (
    METRICS_AUTH,
    PUBLIC_URL,
    environment,
    payload,
    signed_headers,
    write_deployment,
)
from tests.service.process import ServiceProcess


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    folder = tmp_path_factory.mktemp("serve")
    server = ServiceProcess(
        MESSAGING,
        write_deployment(folder),
        folder / "cc.sqlite",
        environment(),
        folder / "serve.log",
        ("--public-url", PUBLIC_URL, "--log-level", "info"),
    ).start()
    yield server
    server.stop()


def requests(url: str) -> list[tuple[str, httpx.Request]]:
    body = payload("web")
    return [
        (
            "a webhook",
            httpx.Request(
                "POST", url + "/webhooks/web", content=body, headers=signed_headers("web", body)
            ),
        ),
        ("an unsigned webhook", httpx.Request("POST", url + "/webhooks/web", content=body)),
        ("an unknown channel", httpx.Request("POST", url + "/webhooks/nowhere", content=body)),
        (
            "Meta's handshake, echoing its challenge",
            httpx.Request(
                "GET",
                url + "/webhooks/whatsapp",
                params={
                    "hub.mode": "subscribe",
                    "hub.verify_token": "verify-whatsapp",
                    "hub.challenge": "<html><script>alert(1)</script>",
                },
            ),
        ),
        ("/health", httpx.Request("GET", url + "/health")),
        ("/ready", httpx.Request("GET", url + "/ready")),
        ("/metrics", httpx.Request("GET", url + "/metrics", headers=METRICS_AUTH)),
        ("the sign-in page (the engine's)", httpx.Request("GET", url + "/signin")),
        ("the API (the engine's)", httpx.Request("GET", url + "/api/agent/presence")),
    ]


def test_every_answer_carries_the_security_headers_once(running: ServiceProcess) -> None:
    with httpx.Client(timeout=10) as client:
        for what, request in requests(running.url):
            answer = client.send(request)
            for name, value in HEADERS:
                given = answer.headers.get_list(name.decode())
                assert given == [value.decode()], f"{what} ({answer.status_code}): {name!r} {given}"


def test_every_answer_has_one_date(running: ServiceProcess) -> None:
    with httpx.Client(timeout=10) as client:
        for what, request in requests(running.url):
            answer = client.send(request)
            assert len(answer.headers.get_list("date")) == 1, f"{what}: {answer.headers}"


def test_the_fronts_calls_to_its_engine_are_not_logged_one_by_one(
    running: ServiceProcess,
) -> None:
    """The front asks its engine for /ready and /metrics with httpx, which logs every request
    at INFO (its URL, query included): quiet, as in the engine process."""
    with httpx.Client(timeout=10) as client:
        for path in ("/ready", "/metrics", "/ready"):
            answer = client.get(running.url + path, headers=METRICS_AUTH)
            assert answer.status_code == 200, (path, answer.text)
    logged = running.log.read_text("utf-8", "replace")
    assert "INFO" in logged  # the level is info: the service's own lines are there
    assert "HTTP Request:" not in logged and " httpx:" not in logged
