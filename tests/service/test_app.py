"""The service under FastAPI's TestClient: webhooks signed and unsigned for every channel, the
handshakes, limits, dead letters, duplicates, health, readiness and metrics."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from ruamel.yaml import YAML

from flowlang.channels.signatures import x_signature
from flowlang.service import ServiceConfigError, create_app
from flowlang.service import app as app_module
from flowlang.service.settings import Settings
from flowlang.web.security import CONTENT_SECURITY_POLICY
from tests.service.helpers import (
    CHANNELS,
    FLOW,
    METRICS_AUTH,
    environment,
    payload,
    secret_env,
    settings_for,
    signed_headers,
    verify_token_of,
    whatsapp_batch,
    write_deployment,
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def settings(tmp_path: Path, env: None) -> Settings:
    return settings_for(tmp_path)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def rows(store: Path, sql: str) -> list[tuple[object, ...]]:
    """Read the store file on a connection of its own (as an operator would)."""
    db = sqlite3.connect(store)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def settled(client: TestClient, timeout: float = 60.0) -> None:
    """Wait until the worker has processed every event made durable."""
    deadline = time.monotonic() + timeout
    while client.get("/ready").json()["unprocessed"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert client.get("/ready").json()["unprocessed"] == 0, "events still unprocessed"


def test_health_and_ready(client: TestClient, settings: Settings) -> None:
    assert client.get("/health").json()["status"] == "ok"
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["ready"] is True
    assert ready.json()["flow"] == "GBank messaging"
    assert ready.json()["store"] == "ok"
    assert str(settings.store) not in ready.text and "cc.sqlite" not in ready.text


def test_ready_says_the_store_is_unreachable_without_saying_where_it_is(
    client: TestClient,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def unreadable(location: object, timeout: float = 2.0) -> int:
        raise sqlite3.OperationalError(f"unable to open database file {location}")

    monkeypatch.setattr(app_module, "count_unprocessed", unreadable)
    ready = client.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["store"] == "unreachable"
    assert ready.json()["problems"] == ["the store cannot be read"]
    assert "cc.sqlite" not in ready.text and str(settings.store.parent) not in ready.text
    # The operator's log has where and why.
    assert any(str(settings.store) in r.getMessage() for r in caplog.records)


def test_ready_agrees_with_itself_when_the_engine_is_deposed_while_the_store_is_read(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process takes the lead while /ready reads the store: the answer gives the role
    it judged readiness by (never 200 with role "deposed", which a balancer would trust)."""
    worker = client.app.state.service.worker  # type: ignore[attr-defined]
    # As `flowlang serve` hosts it: a deposed worker stops its engine, whenever it next wakes
    # (on a loaded machine, before the test is over), rather than follow a cluster it has not.
    worker.on_deposed = lambda: None
    counted = app_module.count_unprocessed

    def deposed_meanwhile(location: object, timeout: float = 2.0) -> int:
        worker.role = "deposed"
        return counted(location, timeout)  # type: ignore[arg-type]

    monkeypatch.setattr(app_module, "count_unprocessed", deposed_meanwhile)
    first = client.get("/ready")
    assert (first.status_code, first.json()["role"]) == (200, "single")
    second = client.get("/ready")
    assert (second.status_code, second.json()["role"]) == (503, "deposed")
    assert second.json()["problems"] == ["the engine worker is not running"]


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_signed_webhook_is_acknowledged_then_processed(
    client: TestClient, settings: Settings, channel: str
) -> None:
    body = payload(channel)
    answer = client.post(
        f"/webhooks/{channel}", content=body, headers=signed_headers(channel, body)
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] >= 1
    settled(client)
    stored = rows(settings.store, "SELECT processed FROM inbound")
    assert stored and all(processed == 1 for (processed,) in stored)
    assert rows(settings.store, "SELECT count(*) FROM messages WHERE direction = 'in'")[0][0] >= 1


@pytest.mark.parametrize("channel", CHANNELS)
def test_an_unsigned_or_wrongly_signed_webhook_is_refused_and_not_kept(
    client: TestClient, settings: Settings, channel: str
) -> None:
    body = payload(channel)
    unsigned = client.post(f"/webhooks/{channel}", content=body)
    assert unsigned.status_code == 401
    assert "header" in unsigned.json()["error"]
    headers = signed_headers(channel, body)
    tampered = client.post(f"/webhooks/{channel}", content=body + b" ", headers=headers)
    assert tampered.status_code == 401
    assert rows(settings.store, "SELECT count(*) FROM inbound")[0][0] == 0
    assert rows(settings.store, "SELECT count(*) FROM dead_letters")[0][0] == 0
    metrics = client.get("/metrics", headers=METRICS_AUTH).text
    assert (
        f'flowlang_webhooks_rejected_total{{channel="{channel}",reason="signature"}} 2.0' in metrics
    )


def test_twilio_is_verified_against_the_public_url_not_the_host_seen(
    client: TestClient, settings: Settings
) -> None:
    body = payload("sms")
    good = signed_headers("sms", body)
    assert client.post("/webhooks/sms", content=body, headers=good).status_code == 200
    # Signed for the URL the service sees (http://testserver/...): not what Twilio called.
    from urllib.parse import parse_qsl

    from flowlang.channels.signatures import twilio_signature

    params = dict(parse_qsl(body.decode(), keep_blank_values=True))
    seen = twilio_signature("http://testserver/webhooks/sms", params, "s3cret-sms")
    wrong = {**good, "X-Twilio-Signature": seen}
    assert client.post("/webhooks/sms", content=body, headers=wrong).status_code == 401


def test_a_duplicate_is_acknowledged_and_not_processed_twice(
    client: TestClient, settings: Settings
) -> None:
    body = payload("whatsapp")
    headers = signed_headers("whatsapp", body)
    first = client.post("/webhooks/whatsapp", content=body, headers=headers).json()
    again = client.post("/webhooks/whatsapp", content=body, headers=headers).json()
    assert (first["accepted"], first["duplicates"]) == (1, 0)
    assert (again["accepted"], again["duplicates"]) == (0, 1)
    settled(client)
    assert rows(settings.store, "SELECT count(*) FROM messages WHERE direction = 'in'")[0][0] == 1


def test_a_webhook_is_acknowledged_while_the_engine_is_busy_and_processed_after(
    client: TestClient, settings: Settings
) -> None:
    service = client.app.state.service  # type: ignore[attr-defined]
    busy, release = threading.Event(), threading.Event()

    def long_job(_engine: object) -> None:  # an agent's action that takes its time
        busy.set()
        release.wait(30)

    job = client.portal.start_task_soon(service.worker.call, long_job)  # type: ignore[union-attr]
    try:
        assert busy.wait(10)
        body = payload("whatsapp")
        answers: list[dict[str, int]] = []
        sender = threading.Thread(
            target=lambda: answers.append(
                client.post(
                    "/webhooks/whatsapp", content=body, headers=signed_headers("whatsapp", body)
                ).json()
            )
        )
        sender.start()
        sender.join(10)
        # Durable and answered while the engine is still busy: nothing of it processed yet.
        assert answers == [{"accepted": 1, "duplicates": 0, "dead_letters": 0}]
        assert client.get("/ready").json()["unprocessed"] == 1
        assert rows(settings.store, "SELECT count(*) FROM messages")[0][0] == 0
    finally:
        release.set()
        job.result(10)
    settled(client)
    assert rows(settings.store, "SELECT count(*) FROM messages WHERE direction = 'in'")[0][0] == 1


def test_an_unreadable_payload_is_acknowledged_and_kept_as_a_dead_letter(
    client: TestClient, settings: Settings
) -> None:
    body = b'{"object": "whatsapp_business_account", "entry": "not a list"'
    answer = client.post(
        "/webhooks/whatsapp", content=body, headers=signed_headers("whatsapp", body)
    )
    assert answer.status_code == 200
    assert answer.json() == {"accepted": 0, "duplicates": 0, "dead_letters": 1}
    settled(client)  # the worker has taken the request's rows into the store
    [(source, kept, reason)] = rows(
        settings.store, "SELECT source, payload, reason FROM dead_letters"
    )
    assert source == "payload:whatsapp"
    assert json.loads(kept)["body"] == body.decode()
    assert reason


@pytest.mark.parametrize(
    ("route", "sibling"), [("messenger", "instagram"), ("x_dm", "x_public"), ("x_public", "x_dm")]
)
def test_a_sibling_channels_event_signed_with_this_routes_secret_is_not_processed(
    client: TestClient, settings: Settings, route: str, sibling: str
) -> None:
    body = payload(sibling)
    answer = client.post(f"/webhooks/{route}", content=body, headers=signed_headers(route, body))
    assert answer.status_code == 200
    assert answer.json()["accepted"] == 0 and answer.json()["dead_letters"] >= 1
    settled(client)  # the worker has taken the request's rows into the store
    assert rows(settings.store, "SELECT count(*) FROM inbound")[0][0] == 0
    assert rows(settings.store, "SELECT count(*) FROM messages")[0][0] == 0
    reasons = rows(settings.store, "SELECT source, reason FROM dead_letters")
    assert all(
        source == f"payload:{route}" and f"an event of {sibling} posted to /webhooks/{route}" in why
        for source, why in reasons
    )


def test_one_bad_event_of_a_batch_is_kept_alone(client: TestClient, settings: Settings) -> None:
    batch = json.loads(payload("line"))
    good = batch["events"][0]
    bad = {"type": "message", "timestamp": "yesterday"}
    batch["events"] = [good, bad]
    body = json.dumps(batch).encode()
    answer = client.post("/webhooks/line", content=body, headers=signed_headers("line", body))
    assert answer.json() == {"accepted": 1, "duplicates": 0, "dead_letters": 1}
    settled(client)  # the worker has taken the request's rows into the store
    # (the good event's reply may be kept too, as outbound:line: LINE has no send token here)
    inbound = "SELECT payload FROM dead_letters WHERE source NOT LIKE 'outbound:%'"
    [(kept,)] = rows(settings.store, inbound)
    assert "yesterday" in kept and good["message"]["text"] not in kept
    settled(client)


def test_a_request_over_the_event_limit_is_one_dead_letter_none_read(
    tmp_path: Path, env: None
) -> None:
    settings = settings_for(tmp_path, max_events=3)
    batch = json.loads(payload("line"))
    batch["events"] = [batch["events"][0]] * 4
    body = json.dumps(batch).encode()
    with TestClient(create_app(settings)) as client:
        answer = client.post("/webhooks/line", content=body, headers=signed_headers("line", body))
    assert answer.status_code == 200
    assert answer.json() == {"accepted": 0, "duplicates": 0, "dead_letters": 1}
    assert rows(settings.store, "SELECT count(*) FROM inbound")[0][0] == 0
    [(kept, reason)] = rows(settings.store, "SELECT payload, reason FROM dead_letters")
    assert json.loads(kept)["body"] == body.decode()
    assert "4 events in one request, over the limit of 3" in reason


def test_identical_unreadable_events_of_a_request_are_one_dead_letter(
    client: TestClient, settings: Settings
) -> None:
    batch = json.loads(payload("line"))
    batch["events"] = [{}] * 50
    body = json.dumps(batch).encode()
    answer = client.post("/webhooks/line", content=body, headers=signed_headers("line", body))
    assert answer.json() == {"accepted": 0, "duplicates": 0, "dead_letters": 1}
    settled(client)  # the worker has taken the request's rows into the store
    [(reason,)] = rows(settings.store, "SELECT reason FROM dead_letters")
    assert "and 49 more identical events of this request" in reason


def test_line_verification_request_is_answered_200(client: TestClient) -> None:
    body = b'{"destination": "U4af4980629", "events": []}'
    answer = client.post("/webhooks/line", content=body, headers=signed_headers("line", body))
    assert answer.status_code == 200
    assert answer.json()["accepted"] == 0


@pytest.mark.parametrize("channel", ["whatsapp", "messenger", "instagram", "facebook_page"])
def test_meta_subscription_handshake(client: TestClient, channel: str) -> None:
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444"}
    right = client.get(
        f"/webhooks/{channel}", params={**query, "hub.verify_token": verify_token_of(channel)}
    )
    assert right.status_code == 200
    assert right.text == "1158201444"
    wrong = client.get(f"/webhooks/{channel}", params={**query, "hub.verify_token": "guess"})
    assert wrong.status_code == 403
    assert "1158201444" not in wrong.text


@pytest.mark.parametrize("channel", ["x_dm", "x_public"])
def test_x_crc_challenge(client: TestClient, channel: str) -> None:
    from flowlang.channels.signatures import x_crc_response

    answer = client.get(f"/webhooks/{channel}", params={"crc_token": "challenge-1"})
    assert answer.status_code == 200
    assert answer.json() == x_crc_response("challenge-1", f"s3cret-{channel}")
    assert answer.json()["response_token"].startswith("sha256=")
    assert answer.json() != x_crc_response("challenge-1", "another secret")


@pytest.mark.parametrize("channel", ["x_dm", "x_public"])
def test_the_crc_endpoint_signs_no_webhook_body(client: TestClient, channel: str) -> None:
    """The CRC answer is the signature of a body equal to the token: a JSON-shaped token is
    refused, so no signed webhook can be obtained from the endpoint and posted back."""
    forged = json.dumps(json.loads(payload(channel)), separators=(",", ":"))
    answer = client.get(f"/webhooks/{channel}", params={"crc_token": forged})
    assert answer.status_code == 400
    assert "response_token" not in answer.json()
    assert "crc_token" in answer.json()["error"]
    for token in ('{"a":1}', "with space", "x" * 257, 'quote"', "new\nline"):
        refused = client.get(f"/webhooks/{channel}", params={"crc_token": token})
        assert refused.status_code == 400, token
    base64_token = "MTIzNDU2Nzg5MGFiY2RlZg==_-/+"
    assert client.get(f"/webhooks/{channel}", params={"crc_token": base64_token}).status_code == 200


@pytest.mark.parametrize("channel", ["x_dm", "x_public"])
@pytest.mark.parametrize(
    "token", ["12345", "-1", "1E-7", "true", "false", "null", "NaN", "-Infinity", "0" * 256]
)
def test_a_body_the_crc_could_sign_is_no_webhook(
    client: TestClient, settings: Settings, channel: str, token: str
) -> None:
    """The CRC answer is the signature of a body equal to the token. A number, true, false,
    null, NaN or Infinity is JSON of base64 characters only, and the CRC refuses it; and a
    webhook whose body is made of those characters at all (which no X webhook is: they are JSON
    objects) is refused 401, its signature being one anyone could ask the CRC for: nothing of
    it is kept (a stranger would otherwise fill the dead letters, one for each number)."""
    answer = client.get(f"/webhooks/{channel}", params={"crc_token": token})
    if token.startswith("0"):  # not JSON (a leading zero): answered as any CRC token
        assert answer.status_code == 200
        signature = answer.json()["response_token"]
    else:
        assert answer.status_code == 400, answer.text
        assert "response_token" not in answer.json()
        signature = x_signature(token.encode(), f"s3cret-{channel}")
    posted = client.post(
        f"/webhooks/{channel}",
        content=token.encode(),
        headers={"x-twitter-webhooks-signature": signature, "content-type": "application/json"},
    )
    assert posted.status_code == 401, posted.text
    assert "CRC token" in posted.json()["error"]
    assert rows(settings.store, "SELECT count(*) FROM dead_letters") == [(0,)]


def test_an_unknown_channel_is_404_and_does_not_list_the_channels(client: TestClient) -> None:
    for answer in (
        client.post("/webhooks/telegram", content=b"{}"),
        client.get("/webhooks/telegram", params={"hub.mode": "subscribe"}),
    ):
        assert answer.status_code == 404
        assert answer.json() == {"error": "no such channel here"}
        assert not any(channel in answer.text for channel in CHANNELS)


def test_webhook_posts_taken_before_the_router_answer_as_the_route_does(
    client: TestClient, settings: Settings
) -> None:
    # POST /webhooks/{channel} is answered by webhooks.WebhookPosts, before FastAPI's router:
    # the same answer, the security headers, the route in the OpenAPI description.
    body = payload("whatsapp")
    headers = signed_headers("whatsapp", body)
    answer = client.post("/webhooks/whatsapp", content=body, headers=headers)
    assert answer.json() == {"accepted": 1, "duplicates": 0, "dead_letters": 0}
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "/webhooks/{channel}" in client.get("/openapi.json").json()["paths"]
    # Paths that are not one channel's webhook go on to the router, as before.
    assert client.post("/webhooks/whatsapp/more", content=body).status_code == 404
    assert client.post("/webhooks/", content=body).status_code in (404, 405)
    settled(client)


def test_no_api_browser_loads_scripts_from_a_cdn(client: TestClient) -> None:
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404
    assert client.get("/openapi.json").status_code == 200


def test_a_body_over_the_limit_is_413_and_nonsense_length_400(tmp_path: Path, env: None) -> None:
    settings = settings_for(tmp_path, body_limit=1000)
    with TestClient(create_app(settings)) as client:
        body = b"{" + b" " * 2000 + b"}"
        big = client.post("/webhooks/line", content=body, headers=signed_headers("line", body))
        assert big.status_code == 413
        assert "1000 bytes" in big.json()["error"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            for _ in range(20):
                yield b" " * 100

        streamed = client.post("/webhooks/line", content=chunks())
        assert streamed.status_code == 413
        nonsense = client.post("/webhooks/line", content=b"{}", headers={"Content-Length": "12abc"})
        assert nonsense.status_code == 400
    assert rows(settings.store, "SELECT count(*) FROM inbound")[0][0] == 0


def test_a_whatsapp_batch_up_to_metas_3_mb_is_taken_over_the_body_limit(
    tmp_path: Path, env: None
) -> None:
    """Meta documents WhatsApp webhooks of up to 3 MB; a 413 would have it send the same batch
    again until it gave up, losing every message in it. Other channels and the API keep the
    service's limit (1 MiB by default)."""
    settings = settings_for(tmp_path)
    texts = [(f"4477009{i:05d}", f"wamid.big.{i}", f"{i} " + "x" * 1500) for i in range(900)]
    body = json.dumps(whatsapp_batch(texts)).encode()
    assert settings.body_limit < len(body) < 3 * 1024 * 1024
    with TestClient(create_app(settings)) as client:
        taken = client.post(
            "/webhooks/whatsapp", content=body, headers=signed_headers("whatsapp", body)
        )
        assert taken.status_code == 200, taken.text
        assert taken.json() == {"accepted": 900, "duplicates": 0, "dead_letters": 0}
        other = client.post("/webhooks/line", content=body, headers=signed_headers("line", body))
        assert other.status_code == 413
        assert f"{settings.body_limit} bytes" in other.json()["error"]
        api = client.post("/api/agent/presence", content=body)
        assert api.status_code == 413
        over = b"{" + b" " * (3 * 1024 * 1024) + b"}"
        refused = client.post(
            "/webhooks/whatsapp", content=over, headers=signed_headers("whatsapp", over)
        )
        assert refused.status_code == 413
        assert "3145728 bytes" in refused.json()["error"]
    assert rows(settings.store, "SELECT count(*) FROM inbound")[0][0] == 900


def test_a_channel_without_a_secret_refuses_to_start(
    tmp_path: Path, env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(secret_env("line"))
    with pytest.raises(ServiceConfigError, match=f"channel line: .*{secret_env('line')}"):
        create_app(settings_for(tmp_path))
    deployment = write_deployment(tmp_path, channels=["whatsapp"])  # the others: no connection
    with pytest.raises(ServiceConfigError, match="channel sms: no signing secret configured"):
        create_app(settings_for(tmp_path, deployment=deployment))


def test_two_flows_of_one_name_or_a_missing_flow_file_refuse_to_start(
    tmp_path: Path, env: None
) -> None:
    with pytest.raises(ServiceConfigError, match="are both named 'GBank messaging'"):
        create_app(settings_for(tmp_path, flows=(FLOW, FLOW)))
    with pytest.raises(ServiceConfigError, match=r"nowhere\.flow: no such flow file"):
        create_app(settings_for(tmp_path, flows=(FLOW, tmp_path / "nowhere.flow")))


@pytest.mark.parametrize("blank", ["", " ", "\t\n "])
def test_a_blank_secret_refuses_to_start_like_a_missing_one(
    tmp_path: Path, env: None, monkeypatch: pytest.MonkeyPatch, blank: str
) -> None:
    monkeypatch.setenv(secret_env("line"), blank)
    with pytest.raises(
        ServiceConfigError,
        match=f"channel line: the environment variable {secret_env('line')} "
        r"\(channels\.line\.connection\.signing_secret_env\) is set but blank",
    ):
        create_app(settings_for(tmp_path))


def test_insecure_dev_accepts_unsigned_webhooks_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    deployment = write_deployment(tmp_path, channels=[])
    settings = settings_for(tmp_path, deployment=deployment, insecure_dev=True)
    with TestClient(create_app(settings)) as client:
        body = payload("web")
        for _ in range(2):
            assert client.post("/webhooks/web", content=body).status_code == 200
    warnings = [r for r in caplog.records if "WITHOUT a signature check" in r.getMessage()]
    assert len(warnings) == 2


def test_openapi_lists_every_endpoint(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/webhooks/{channel}", "/health", "/ready", "/metrics"} <= set(paths)
    assert {"get", "post"} <= set(paths["/webhooks/{channel}"])


def test_metrics_count_inbound_events_by_channel(client: TestClient) -> None:
    body = payload("whatsapp")
    client.post("/webhooks/whatsapp", content=body, headers=signed_headers("whatsapp", body))
    settled(client)
    # The worker observes an event's processing time just after its commit marks it processed.
    for _ in range(500):
        text = client.get("/metrics", headers=METRICS_AUTH).text
        if "flowlang_processing_seconds_count 1.0" in text:
            break
        time.sleep(0.01)
    assert 'flowlang_inbound_events_total{channel="whatsapp"} 1.0' in text
    assert "flowlang_processing_seconds_count 1.0" in text
    assert "flowlang_worker_backlog" in text


def test_a_deployment_sets_a_channels_webhook_size(tmp_path: Path, env: None) -> None:
    """`channels.<key>.rules.webhook_max_bytes` in the deployment, over the registry's."""
    deployment = write_deployment(tmp_path)
    yaml = YAML()
    data = yaml.load(deployment.read_text("utf-8"))
    data["channels"]["line"]["rules"] = {"webhook_max_bytes": 2_000_000}
    with deployment.open("w", encoding="utf-8") as out:
        yaml.dump(data, out)
    body = b"{" + b" " * 1_500_000 + b"}"
    with TestClient(create_app(settings_for(tmp_path, deployment=deployment))) as client:
        line = client.post("/webhooks/line", content=body, headers=signed_headers("line", body))
        assert line.status_code == 200  # read, then kept as a dead letter: not LINE's shape
        assert line.json()["dead_letters"] == 1
        sms = client.post("/webhooks/sms", content=body, headers=signed_headers("sms", body))
        assert sms.status_code == 413
