"""`flowlang serve` on a SQLite store runs as two processes: the front takes the webhooks into the
inbox and answers them, the engine process (started and supervised by the front) runs the
flows and the API. `kill -9` of either loses nothing and doubles nothing."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from flowlang.runtime.users import new_token, token_hash
from flowlang.service.engine_main import engine_lock
from flowlang.service.front import ENGINE_DOWN
from flowlang.service.settings import ServiceConfigError
from flowlang.store import SqliteStore
from tests.service.helpers import FLOW, METRICS_AUTH, environment, signed_headers, write_deployment
from tests.service.process import ServiceProcess
from tests.service.test_process import Traffic, rows, service, web_message


def post(server: ServiceProcess, i: int) -> httpx.Response:
    body = web_message(i, visitor=i % 17)
    return httpx.post(
        f"{server.url}/webhooks/web", content=body, headers=signed_headers("web", body)
    )


def texts_in(store: Path) -> dict[str, int]:
    """Each inbound message's text in the store, and how many times it is there."""
    received = rows(
        store, "SELECT content, count(*) FROM messages WHERE direction = 'in' GROUP BY content"
    )
    return {json.loads(str(content)).get("text"): int(str(n)) for content, n in received}


def wait_for(check: object, timeout: float = 60.0) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie (exited, not reaped yet) has ended too.
    return Path(f"/proc/{pid}/stat").read_text("ascii").rsplit(")", 1)[1].split()[0] == "Z"


def test_webhooks_are_acknowledged_while_the_engine_process_is_down_and_processed_after(
    tmp_path: Path,
) -> None:
    server = service(tmp_path).start()
    try:
        engine = server.engine_pid()
        assert engine != server.process.pid if server.process else False
        assert post(server, 0).json() == {"accepted": 1, "duplicates": 0, "dead_letters": 0}
        server.kill_engine()
        wait_for(lambda: gone(engine))
        # The front answers alone: webhooks durable, the rest refused until the engine is back.
        for i in range(1, 21):
            answer = post(server, i)
            assert answer.status_code == 200 and answer.json()["accepted"] == 1
        ready = httpx.get(f"{server.url}/ready", timeout=10)
        if ready.status_code == 503:  # unless the engine is back already
            assert ENGINE_DOWN in ready.json()["problems"]
        wait_for(lambda: httpx.get(f"{server.url}/ready", timeout=10).status_code == 200)
        assert server.engine_pid() != engine  # started again by the front
        server.settle()
        # The API is the engine's again (no token: refused by the engine, not 503), also for
        # a client that sends the processes' forwarding header itself (dropped, not trusted).
        assert httpx.get(f"{server.url}/api/agent/interactions").status_code == 401
        claimed = {"x-flowlang-forwarded": "1"}
        answer = httpx.get(f"{server.url}/api/agent/interactions", headers=claimed)
        assert answer.status_code == 401, answer.text
        metrics = httpx.get(f"{server.url}/metrics", headers=METRICS_AUTH).text
        assert 'flowlang_inbound_events_total{channel="web"} 21.0' in metrics  # the front's
        assert "flowlang_processing_seconds_count" in metrics  # the engine's
    finally:
        server.stop()
    texts = texts_in(tmp_path / "cc.sqlite")
    assert sorted(texts) == sorted(f"message number {i}" for i in range(21))
    assert set(texts.values()) == {1}


def test_kill_9_of_the_engine_process_mid_stream_loses_nothing_and_doubles_nothing(
    tmp_path: Path,
) -> None:
    server = service(tmp_path).start()
    try:
        traffic = Traffic(total=240)
        traffic.run(f"{server.url}/webhooks/web", 8, kill_after=80, kill=server.kill_engine)
        # The front never stopped: every request was acknowledged, the engine's work not lost.
        assert traffic.acked == set(range(traffic.total))
        again = Traffic(total=traffic.total)
        again.send(f"{server.url}/webhooks/web", list(range(0, traffic.total, 7)))  # resent
        wait_for(lambda: httpx.get(f"{server.url}/ready", timeout=10).status_code == 200)
        server.settle()
    finally:
        server.stop()
    store = tmp_path / "cc.sqlite"
    texts = texts_in(store)
    assert len(texts) == traffic.total  # 0 lost
    assert set(texts.values()) == {1}  # 0 doubled
    assert rows(store, "SELECT count(*) FROM inbound WHERE processed = 0") == [(0,)]


def test_kill_9_of_the_front_process_stops_its_engine_and_a_restart_loses_and_doubles_nothing(
    tmp_path: Path,
) -> None:
    server = service(tmp_path).start()
    engine = server.engine_pid()
    traffic = Traffic(total=240)
    traffic.run(f"{server.url}/webhooks/web", 8, kill_after=80, kill=server.kill_front)
    assert 80 <= len(traffic.acked) < traffic.total
    wait_for(lambda: gone(engine), timeout=30)  # no engine left running without its front

    server.start()
    try:
        unacked = [i for i in range(traffic.total) if i not in traffic.acked]
        again = Traffic(total=traffic.total)
        again.send(f"{server.url}/webhooks/web", unacked + sorted(traffic.acked)[:40])
        assert again.acked == set(unacked + sorted(traffic.acked)[:40])
        server.settle()
    finally:
        server.stop()
    texts = texts_in(tmp_path / "cc.sqlite")
    assert len(texts) == traffic.total  # 0 lost
    assert set(texts.values()) == {1}  # 0 doubled


def test_one_engine_at_a_time_holds_a_store(tmp_path: Path) -> None:
    store = tmp_path / "cc.sqlite"
    held = engine_lock(store)
    try:
        with pytest.raises(ServiceConfigError, match="another flowlang serve runs this store"):
            engine_lock(store, wait=0.1)
    finally:
        held.close()
    engine_lock(store, wait=0.1).close()  # let go: the next engine takes it


def test_one_agents_sign_in_through_the_front_signs_in_no_one_else(tmp_path: Path) -> None:
    token = new_token()
    with SqliteStore(tmp_path / "cc.sqlite") as store:
        store.add_user("alice", "agent", token_hash(token), datetime.now(UTC))
    deployment = write_deployment(tmp_path)
    # No --public-url: a plain-HTTP cookie, as on a workstation (the front passes it on as is).
    log = tmp_path / "serve.log"
    server = ServiceProcess(FLOW, deployment, tmp_path / "cc.sqlite", environment(), log).start()
    try:
        signed = httpx.post(
            f"{server.url}/signin", data={"token": token}, headers={"Origin": server.url}
        )
        assert signed.status_code == 303 and signed.headers["location"] == "/agent"
        assert "flowlang_session" in signed.headers["set-cookie"]  # alice's browser keeps it
        # Another browser, without a cookie: the sign-in form, not alice's session.
        anonymous = httpx.get(f"{server.url}/signin")
        assert anonymous.status_code == 200 and 'data-testid="token"' in anonymous.text
        assert httpx.get(f"{server.url}/api/agent/interactions").status_code == 401
    finally:
        server.stop()


def test_a_configuration_error_the_engine_process_finds_stops_serve_with_its_message(
    tmp_path: Path,
) -> None:
    deployment = write_deployment(tmp_path)
    # WhatsApp's send credentials named, their variable unset: found when the engine process
    # builds the senders, after the front has checked the webhooks' secrets.
    named = "signing_secret_env: TEST_WHATSAPP_SECRET"
    text = deployment.read_text("utf-8")
    assert named in text
    more = f"{named}\n      access_token_env: TEST_UNSET_TOKEN"
    deployment.write_text(text.replace(named, more, 1), "utf-8")
    log = tmp_path / "serve.log"
    server = ServiceProcess(FLOW, deployment, tmp_path / "cc.sqlite", environment(), log)
    with pytest.raises(RuntimeError, match="flowlang serve exited"):
        server.start()
    assert server.process is not None and server.process.returncode == 2
    said = log.read_text("utf-8")
    assert "error: " in said and "TEST_UNSET_TOKEN" in said
    assert "the engine process exited" not in said  # not started again and again
