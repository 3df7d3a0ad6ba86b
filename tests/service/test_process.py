"""The service as a real `flowlang serve` process on a loopback port: webhooks and handshakes
over real HTTP, limits and slow clients, and `kill -9` in the middle of traffic."""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from flowlang.store import count_unprocessed
from tests.service.helpers import (
    CHANNELS,
    FLOW,
    PUBLIC_URL,
    environment,
    payload,
    signed_headers,
    verify_token_of,
    whatsapp_batch,
    write_deployment,
)
from tests.service.process import ServiceProcess


def rows(store: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    db = sqlite3.connect(store)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def service(folder: Path, flow: Path = FLOW, unstaffed: str | None = None) -> ServiceProcess:
    return ServiceProcess(
        flow,
        write_deployment(folder, unstaffed=unstaffed),
        folder / "cc.sqlite",
        environment(),
        folder / "serve.log",
        ("--public-url", PUBLIC_URL, "--header-timeout", "1", "--body-timeout", "1"),
    )


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    server = service(tmp_path_factory.mktemp("serve")).start()
    yield server
    server.stop()


def web_message(i: int, visitor: int | None = None) -> bytes:
    """A web widget message with a current timestamp (unique id and text per `i`)."""
    return json.dumps(
        {
            "type": "message",
            "id": f"web-{i}",
            "widget": "gbank-web",
            "visitor": {"id": f"visitor-{i if visitor is None else visitor}", "name": "Eve"},
            "text": f"message number {i}",
            "timestamp": datetime.now(UTC).isoformat(),
        }
    ).encode()


@pytest.mark.parametrize("channel", CHANNELS)
def test_signed_webhooks_are_taken_and_unsigned_refused(
    running: ServiceProcess, channel: str
) -> None:
    body = payload(channel)
    url = f"{running.url}/webhooks/{channel}"
    assert httpx.post(url, content=body).status_code == 401
    answer = httpx.post(url, content=body, headers=signed_headers(channel, body))
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] + answer.json()["duplicates"] >= 1


def test_handshakes_over_http(running: ServiceProcess) -> None:
    query = {"hub.mode": "subscribe", "hub.challenge": "42"}
    good = {**query, "hub.verify_token": verify_token_of("whatsapp")}
    assert httpx.get(f"{running.url}/webhooks/whatsapp", params=good).text == "42"
    bad = {**query, "hub.verify_token": "nope"}
    assert httpx.get(f"{running.url}/webhooks/whatsapp", params=bad).status_code == 403
    crc = httpx.get(f"{running.url}/webhooks/x_dm", params={"crc_token": "t"})
    assert crc.json()["response_token"].startswith("sha256=")


def test_limits_over_http(running: ServiceProcess) -> None:
    big = b"{" + b" " * (1024 * 1024) + b"}"
    url = f"{running.url}/webhooks/web"
    assert httpx.post(url, content=big, headers=signed_headers("web", big)).status_code == 413
    # a WhatsApp batch over the 1 MiB limit, under Meta's documented 3 MB, is taken whole
    texts = [(f"4477008{i:05d}", f"wamid.batch.{i}", "y" * 1500) for i in range(800)]
    batch = json.dumps(whatsapp_batch(texts)).encode()
    assert len(batch) > 1024 * 1024
    taken = httpx.post(
        f"{running.url}/webhooks/whatsapp", content=batch, headers=signed_headers("whatsapp", batch)
    )
    assert taken.status_code == 200, taken.text
    assert taken.json()["accepted"] == 800
    raw = b"POST /webhooks/web HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n{}"
    assert _exchange(running.port, raw).startswith(b"HTTP/1.1 400")
    huge = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n"
    with socket.create_connection(("127.0.0.1", running.port), timeout=10) as sock:
        with contextlib.suppress(OSError):  # the server may close before it has read it all
            sock.sendall(huge)
        assert sock.recv(65536).startswith(b"HTTP/1.1 400")  # a head over 64 KiB
    assert httpx.get(f"{running.url}/health").json()["status"] == "ok"


def _exchange(port: int, data: bytes, pause: float = 0.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        if pause:
            time.sleep(pause)
        return sock.recv(65536)


def test_a_slow_client_is_disconnected(running: ServiceProcess) -> None:
    # Headers that never end: the connection is closed after --header-timeout (1 s here).
    with socket.create_connection(("127.0.0.1", running.port), timeout=10) as sock:
        sock.sendall(b"POST /webhooks/web HTTP/1.1\r\nHost: x\r\n")
        assert sock.recv(65536) == b""  # closed by the server, nothing answered
    # A body that stops half way: 408, and the connection is closed.
    with socket.create_connection(("127.0.0.1", running.port), timeout=10) as sock:
        sock.sendall(b"POST /webhooks/web HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408")
    assert httpx.get(f"{running.url}/health").status_code == 200


def test_over_the_concurrency_limit_a_webhook_gets_503_and_nothing_is_kept(
    tmp_path: Path,
) -> None:
    server = ServiceProcess(
        FLOW,
        write_deployment(tmp_path),
        tmp_path / "cc.sqlite",
        environment(),
        tmp_path / "serve.log",
        ("--public-url", PUBLIC_URL, "--limit-concurrency", "3", "--header-timeout", "60"),
    ).start()
    try:
        body = web_message(1)
        request = (
            b"POST /webhooks/web HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in signed_headers("web", body).items()).encode()
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(2)]
        try:
            answer = _exchange(server.port, request)  # the third connection: over the limit
        finally:
            for sock in idle:
                sock.close()
        assert answer.startswith(b"HTTP/1.1 503"), answer
        assert server.unprocessed() == 0
        assert rows(tmp_path / "cc.sqlite", "SELECT count(*) FROM inbound") == [(0,)]
        # The vendor retries the request it got no 200 for: it is new to the service.
        retried = httpx.post(
            f"{server.url}/webhooks/web", content=body, headers=signed_headers("web", body)
        )
        assert retried.status_code == 200 and retried.json()["accepted"] == 1, retried.text
    finally:
        server.stop()


def test_two_hundred_simultaneous_connections_are_all_answered(running: ServiceProcess) -> None:
    socks = [socket.create_connection(("127.0.0.1", running.port), timeout=30) for _ in range(200)]
    try:
        for sock in socks:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answers = [sock.recv(65536) for sock in socks]
    finally:
        for sock in socks:
            sock.close()
    assert [a[:12] for a in answers] == [b"HTTP/1.1 200"] * 200


def test_dead_letter_and_duplicate_over_http(tmp_path: Path) -> None:
    server = service(tmp_path).start()
    try:
        url = f"{server.url}/webhooks/web"
        junk = b"this is not json"
        answer = httpx.post(url, content=junk, headers=signed_headers("web", junk))
        assert answer.json() == {"accepted": 0, "duplicates": 0, "dead_letters": 1}
        body = web_message(1)
        headers = signed_headers("web", body)
        assert httpx.post(url, content=body, headers=headers).json()["accepted"] == 1
        assert httpx.post(url, content=body, headers=headers).json()["duplicates"] == 1
        server.settle()
    finally:
        server.stop()
    store = tmp_path / "cc.sqlite"
    kept = "SELECT source FROM dead_letters WHERE source LIKE 'payload:%'"
    assert rows(store, kept) == [("payload:web",)]
    inbound = "SELECT count(*) FROM messages WHERE direction = 'in' AND content LIKE ?"
    assert rows(store, inbound, "%message number 1%") == [(1,)]


class Traffic:
    """Clients sending `total` distinct web messages; which ones were acknowledged."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.acked: set[int] = set()
        self.lock = threading.Lock()
        self._kill_after: int | None = None
        self._kill: Callable[[], object] = lambda: None

    def send(self, url: str, numbers: list[int]) -> None:
        with httpx.Client(timeout=10) as client:
            for i in numbers:
                body = web_message(i, visitor=i % 17)
                try:
                    answer = client.post(url, content=body, headers=signed_headers("web", body))
                except httpx.HTTPError:
                    continue  # the process died under this request: not acknowledged
                if answer.status_code == 200:
                    with self.lock:
                        self.acked.add(i)
                        now_due = len(self.acked) == self._kill_after
                    if now_due:  # killed by the client that saw it, not by a polling thread
                        self._kill()  # that a busy machine may not run before every ack is in

    def run(self, url: str, clients: int, kill_after: int, kill: Callable[[], object]) -> None:
        """Send from `clients` threads; `kill` (kill -9 of a process) once `kill_after`
        requests are acknowledged; returns when every client is done."""
        numbers = list(range(self.total))
        self._kill_after, self._kill = kill_after, kill
        threads = [
            threading.Thread(target=self.send, args=(url, numbers[k::clients]))
            for k in range(clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self._kill_after = None


@pytest.mark.parametrize("clients", [1, 8])
def test_kill_9_mid_stream_loses_nothing_and_doubles_nothing(tmp_path: Path, clients: int) -> None:
    server = service(tmp_path).start()
    traffic = Traffic(total=240)
    traffic.run(f"{server.url}/webhooks/web", clients, kill_after=80, kill=server.kill)
    assert 80 <= len(traffic.acked) < traffic.total  # killed in the middle of the stream
    acked_before = set(traffic.acked)

    server.start()  # the same store file: recovers what was durable and not processed
    again = Traffic(total=traffic.total)
    unacked = [i for i in range(traffic.total) if i not in acked_before]
    duplicates = sorted(acked_before)[:40]
    again.send(f"{server.url}/webhooks/web", unacked + duplicates)
    assert again.acked == set(unacked + duplicates)
    server.settle()
    server.stop()

    store = tmp_path / "cc.sqlite"
    received = rows(
        store,
        "SELECT content, count(*) FROM messages WHERE direction = 'in' GROUP BY content",
    )
    texts = {json.loads(str(content)).get("text"): count for content, count in received}
    assert len(texts) == traffic.total  # 0 lost
    assert set(texts.values()) == {1}  # 0 doubled
    assert rows(store, "SELECT count(*) FROM inbound WHERE processed = 1") == [(traffic.total,)]
    assert rows(store, "SELECT count(*) FROM inbound WHERE processed = 0") == [(0,)]


def line_batch(first: int, count: int) -> bytes:
    """One LINE webhook request with `count` text messages from as many users."""
    now = int(time.time() * 1000)
    events = [
        {
            "type": "message",
            "message": {"type": "text", "id": f"m{i}", "text": f"line message {i}"},
            "webhookEventId": f"W{i:025d}",
            "deliveryContext": {"isRedelivery": False},
            "timestamp": now,
            "source": {"type": "user", "userId": f"U{i:032d}"},
            "replyToken": f"r{i}",
            "mode": "active",
        }
        for i in range(first, first + count)
    ]
    return json.dumps({"destination": "U4af4980629", "events": events}).encode()


def test_kill_9_right_after_a_batch_of_acks_processes_each_acknowledged_message_once(
    tmp_path: Path,
) -> None:
    server = service(tmp_path).start()
    # Two LINE requests of 1,000 messages each: acknowledged at once, processed after, so the
    # web messages acknowledged next wait behind them.
    batches = [line_batch(0, 1000), line_batch(1000, 1000)]
    for body in batches:
        answer = httpx.post(
            f"{server.url}/webhooks/line", content=body, headers=signed_headers("line", body)
        )
        assert answer.json() == {"accepted": 1000, "duplicates": 0, "dead_letters": 0}
    traffic = Traffic(total=200)
    # 8 clients; the process is killed the moment the last request is acknowledged.
    traffic.run(f"{server.url}/webhooks/web", 8, kill_after=traffic.total, kill=server.kill)
    assert traffic.acked == set(range(traffic.total))
    store = tmp_path / "cc.sqlite"
    assert count_unprocessed(store) > 0  # acknowledged, not processed when the process died

    server.start()
    for body in batches[:1]:  # LINE's redelivery of a request, and retries of web messages
        answer = httpx.post(
            f"{server.url}/webhooks/line", content=body, headers=signed_headers("line", body)
        )
        assert answer.json() == {"accepted": 0, "duplicates": 1000, "dead_letters": 0}
    again = Traffic(total=traffic.total)
    again.send(f"{server.url}/webhooks/web", list(range(50)))
    assert again.acked == set(range(50))
    server.settle()
    server.stop()
    received = rows(
        store, "SELECT content, count(*) FROM messages WHERE direction = 'in' GROUP BY content"
    )
    texts = {json.loads(str(content)).get("text"): count for content, count in received}
    assert len(texts) == traffic.total + 2000  # every acknowledged message processed
    assert set(texts.values()) == {1}  # none twice
    assert rows(store, "SELECT count(*) FROM inbound WHERE processed = 0") == [(0,)]


TIMER_FLOW = """\
flow "Timer test"
serve messages on web account "gbank-web"

state start:
    reply "Queued"
    route to queue "Complaints":
        timeout 4s
        on timeout:
            reply "Sorry for the wait"
"""


def test_a_queue_timeout_armed_before_kill_9_fires_after_the_restart(tmp_path: Path) -> None:
    flow = tmp_path / "timer.flow"
    flow.write_text(TIMER_FLOW, "utf-8")
    server = service(tmp_path, flow, unstaffed="Complaints").start()
    store = tmp_path / "cc.sqlite"
    body = web_message(1)
    answer = httpx.post(
        f"{server.url}/webhooks/web", content=body, headers=signed_headers("web", body)
    )
    assert answer.json()["accepted"] == 1
    server.settle()
    server.kill()  # the queue timeout is armed (4 s after the message), not yet due
    outbound = "SELECT content FROM messages WHERE direction = 'out'"
    assert [json.loads(str(c))["text"] for (c,) in rows(store, outbound)] == ["Queued"]

    server.start()
    deadline = time.monotonic() + 30
    texts: list[str] = []
    while time.monotonic() < deadline and "Sorry for the wait" not in texts:
        time.sleep(0.1)
        texts = [json.loads(str(c))["text"] for (c,) in rows(store, outbound)]
    server.stop()
    assert texts == ["Queued", "Sorry for the wait"]
