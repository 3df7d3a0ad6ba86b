"""The service sends through each channel's vendor: a customer's message in, the flow's reply
out to the (fake) vendor's send API, authorised from the environment."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from ruamel.yaml import YAML

from flowlang.service import ServiceConfigError, create_app
from tests.fake_vendor import FakeVendor, Reply
from tests.service.helpers import (
    METRICS_AUTH,
    environment,
    payload,
    settings_for,
    signed_headers,
    write_deployment,
)


def _with_send_connection(path: Path, vendor: FakeVendor) -> Path:
    yaml = YAML()
    data = yaml.load(path.read_text("utf-8"))
    connection = data["channels"]["whatsapp"]["connection"]
    connection["access_token_env"] = "TEST_WHATSAPP_TOKEN"
    connection["api_base"] = vendor.base_url
    with path.open("w", encoding="utf-8") as out:
        yaml.dump(data, out)
    return path


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)


def test_a_reply_reaches_the_vendors_send_api(
    tmp_path: Path, env: None, fake_vendor: FakeVendor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_WHATSAPP_TOKEN", "wa-token")
    deployment = _with_send_connection(write_deployment(tmp_path), fake_vendor)
    settings = settings_for(tmp_path, deployment=deployment)
    body = payload("whatsapp")
    with TestClient(create_app(settings)) as client:
        answer = client.post(
            "/webhooks/whatsapp", content=body, headers=signed_headers("whatsapp", body)
        )
        assert answer.status_code == 200
        for _ in range(500):
            if fake_vendor.requests:
                break
            time.sleep(0.01)
    request = fake_vendor.requests[0]
    assert (request.method, request.path) == ("POST", "/106540352242922/messages")
    assert request.headers["authorization"] == "Bearer wa-token"
    assert request.json()["messaging_product"] == "whatsapp"
    assert request.headers["idempotency-key"]


def _whatsapp_from(wa_id: str, message_id: str) -> bytes:
    """The example WhatsApp text, from another customer with another message id."""
    data = json.loads(payload("whatsapp"))
    value = data["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = value["messages"][0]["from"] = wa_id
    value["messages"][0]["id"] = message_id
    # written now, as Meta stamps it: the example's own date is months ago, and the flow's
    # timers counted from it would run now, late, outside the reply window
    value["messages"][0]["timestamp"] = str(int(time.time()))
    return json.dumps(data).encode()


def _until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(1000):
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def test_a_hanging_vendor_never_holds_up_a_webhooks_acknowledgement(
    tmp_path: Path, env: None, fake_vendor: FakeVendor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_WHATSAPP_TOKEN", "wa-token")
    deployment = _with_send_connection(write_deployment(tmp_path), fake_vendor)
    release = threading.Event()
    fake_vendor.script(Reply.held(release))  # the first send hangs until the test releases it
    with TestClient(create_app(settings_for(tmp_path, deployment=deployment))) as client:
        first = _whatsapp_from("447700900001", "wamid.first")
        answer = client.post(
            "/webhooks/whatsapp", content=first, headers=signed_headers("whatsapp", first)
        )
        assert answer.status_code == 200
        _until(lambda: len(fake_vendor.requests) == 1, "the first reply reached the vendor")

        second = _whatsapp_from("447700900002", "wamid.second")
        answer = client.post(
            "/webhooks/whatsapp", content=second, headers=signed_headers("whatsapp", second)
        )
        # Answered while the vendor still holds the first send: only now is it released.
        assert answer.status_code == 200 and answer.json()["accepted"] == 1
        assert len(fake_vendor.requests) == 1
        release.set()
        _until(lambda: len(fake_vendor.requests) == 2, "the second reply reached the vendor")
        _until(
            lambda: (
                'flowlang_deliveries_total{status="sent"} 2.0'
                in client.get("/metrics", headers=METRICS_AUTH).text
            ),
            "both sends accepted by the vendor",
        )
    to = [r.json()["to"] for r in fake_vendor.requests]
    assert to == ["447700900001", "447700900002"]
    keys = [r.headers["idempotency-key"] for r in fake_vendor.requests]
    assert len(set(keys)) == 2  # each message sent once: the held one was never retried


@pytest.mark.parametrize("blank", ["", "   "])
def test_a_blank_send_token_stops_the_service_like_a_missing_one(
    tmp_path: Path,
    env: None,
    fake_vendor: FakeVendor,
    monkeypatch: pytest.MonkeyPatch,
    blank: str,
) -> None:
    monkeypatch.setenv("TEST_WHATSAPP_TOKEN", blank)
    deployment = _with_send_connection(write_deployment(tmp_path), fake_vendor)
    with pytest.raises(
        ServiceConfigError,
        match=r"channels\.whatsapp\.connection\.access_token_env: the environment variable "
        "TEST_WHATSAPP_TOKEN is set but blank",
    ):
        create_app(settings_for(tmp_path, deployment=deployment))
    assert fake_vendor.requests == []


def _deliveries(client: TestClient) -> dict[str, float]:
    """flowlang_deliveries_total by status, from /metrics."""
    found = re.findall(
        r'flowlang_deliveries_total\{status="(\w+)"\} (\S+)',
        client.get("/metrics", headers=METRICS_AUTH).text,
    )
    return {status: float(value) for status, value in found}


def _counted(client: TestClient, wanted: dict[str, float]) -> Callable[[], bool]:
    return lambda: wanted.items() <= _deliveries(client).items()


def test_deliveries_are_counted_by_what_the_vendor_said(
    tmp_path: Path, env: None, fake_vendor: FakeVendor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_WHATSAPP_TOKEN", "wa-token")
    deployment = _with_send_connection(write_deployment(tmp_path), fake_vendor)
    permanent = Reply.error(400, {"error": {"code": 131047, "message": "Re-engagement"}})
    fake_vendor.script(
        Reply.retry_after(0),  # first customer's reply: retried once, then sent
        Reply(),
        permanent,  # second customer's: refused for good
        *[Reply.retry_after(0)] * 5,  # third customer's: retried until given up on
    )
    with TestClient(create_app(settings_for(tmp_path, deployment=deployment))) as client:
        for n, wanted in ((1, {"sent": 1.0, "retried": 1.0}), (2, {"failed_permanent": 1.0})):
            body = _whatsapp_from(f"44770090000{n}", f"wamid.{n}")
            headers = signed_headers("whatsapp", body)
            assert client.post("/webhooks/whatsapp", content=body, headers=headers).is_success
            _until(_counted(client, wanted), f"customer {n}: {wanted}")
        body = _whatsapp_from("447700900003", "wamid.3")
        client.post("/webhooks/whatsapp", content=body, headers=signed_headers("whatsapp", body))
        _until(lambda: "given_up" in _deliveries(client), "the third reply given up on")
        counted = _deliveries(client)
    # Sent counts only what the vendor accepted: one of the three replies.
    assert counted == {"sent": 1.0, "retried": 5.0, "failed_permanent": 1.0, "given_up": 1.0}
    assert len(fake_vendor.requests) == 8


def test_a_missing_send_token_stops_the_service_naming_channel_and_variable(
    tmp_path: Path, env: None, fake_vendor: FakeVendor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_WHATSAPP_TOKEN", raising=False)
    deployment = _with_send_connection(write_deployment(tmp_path), fake_vendor)
    with pytest.raises(
        ServiceConfigError,
        match=r"channels\.whatsapp\.connection\.access_token_env: the environment variable "
        "TEST_WHATSAPP_TOKEN is not set",
    ):
        create_app(settings_for(tmp_path, deployment=deployment))
    assert fake_vendor.requests == []
