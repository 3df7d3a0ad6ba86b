"""Published flow versions survive a restart of `flowlang serve` (a real process), and one
process serves several flows: publish v2, restart, v2 serves new conversations while an older
one finishes on v1; a rollback survives a restart too; a changed file wins over the store."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowlang.runtime.users import new_token, token_hash
from flowlang.store import SqliteStore
from tests.fake_vendor import FakeVendor
from tests.service.api_helpers import WA_TOKEN_ENV, _send_whatsapp_to
from tests.service.helpers import (
    PAYLOADS,
    PUBLIC_URL,
    ROOT,
    environment,
    signed_headers,
    whatsapp_text,
    write_deployment,
)
from tests.service.process import ServiceProcess

FLOW = """\
flow "Restart test"
serve messages on whatsapp number "+442079460000"

state start:
    ask "{question}" into name wait 1h:
        on answer:
            reply "Thanks, {thanks}"
    route to queue "Overflow"
"""
V1 = FLOW.format(question="Version one: your name?", thanks="version one")
V2 = FLOW.format(question="Version two: your name?", thanks="version two")
V3 = FLOW.format(question="Version three: your name?", thanks="version three")


class Site:
    """A deployment, a store with an admin, and `flowlang serve` started and restarted on it."""

    def __init__(self, folder: Path, vendor: FakeVendor) -> None:
        self.folder = folder
        self.vendor = vendor
        self.flow = folder / "restart.flow"
        self.flow.write_text(V1, "utf-8")
        self.deployment = write_deployment(folder)
        _send_whatsapp_to(self.deployment, vendor.base_url)
        self.store = folder / "cc.sqlite"
        self.token = new_token()
        with SqliteStore(self.store) as store:
            store.add_user("ada", "admin", token_hash(self.token), datetime.now(UTC))
        self.env = {**environment(), WA_TOKEN_ENV: "wa-token"}
        self.server: ServiceProcess | None = None
        self.ids = iter(range(1, 10**6))

    def start(self, *more_flows: Path) -> ServiceProcess:
        self.server = ServiceProcess(
            self.flow,
            self.deployment,
            self.store,
            self.env,
            self.folder / "serve.log",
            ("--public-url", PUBLIC_URL, *map(str, more_flows)),
        ).start()
        return self.server

    def restart(self, *more_flows: Path) -> ServiceProcess:
        assert self.server is not None
        self.server.stop()
        return self.start(*more_flows)

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    def admin(self, method: str, path: str, body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.request(method, self.url + path, json=body, headers=headers, timeout=30)

    def whatsapp(self, wa_id: str, text: str) -> None:
        payload = whatsapp_text(wa_id, f"wamid.{next(self.ids)}-{time.time_ns()}", text)
        self.post("whatsapp", json.dumps(payload).encode())

    def post(self, channel: str, body: bytes) -> None:
        answer = httpx.post(
            f"{self.url}/webhooks/{channel}",
            content=body,
            headers=signed_headers(channel, body),
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        assert self.server is not None
        self.server.settle()

    def said_to(self, wa_id: str, count: int) -> list[str]:
        """The texts the vendor was asked to send to `wa_id`, once there are `count`."""
        for _ in range(1000):
            texts = [
                r.json()["text"]["body"]
                for r in self.vendor.requests
                if r.path.endswith("/messages") and r.json().get("to") == wa_id
            ]
            if len(texts) >= count:
                return texts
            time.sleep(0.01)
        raise AssertionError(f"{wa_id} got {texts}")

    def log(self) -> str:
        return (self.folder / "serve.log").read_text("utf-8")


@pytest.fixture
def site(tmp_path: Path, fake_vendor: FakeVendor) -> Iterator[Site]:
    site = Site(tmp_path, fake_vendor)
    yield site
    if site.server is not None:
        site.server.stop()


def test_a_published_version_survives_a_restart_and_in_flight_conversations_keep_theirs(
    site: Site,
) -> None:
    site.start()
    v1 = site.admin("GET", "/api/admin/flows").json()["current"]
    site.whatsapp("447700900001", "Hello")  # asked version one's question; waits for the answer
    assert site.said_to("447700900001", 1) == ["Version one: your name?"]
    published = site.admin("POST", "/api/admin/flows", {"text": V2})
    assert published.status_code == 201, published.text
    v2 = published.json()["version"]

    site.restart()  # the file still says version one, unchanged since the start
    assert f"flow 'Restart test': version {v2} published by ada" in site.log()
    assert httpx.get(site.url + "/ready").json()["flows"] == {"Restart test": v2}
    site.whatsapp("447700900002", "Hello")
    assert site.said_to("447700900002", 1) == ["Version two: your name?"]
    site.whatsapp("447700900001", "Eve")  # answers on the version it started on
    assert site.said_to("447700900001", 2)[1] == "Thanks, version one"
    (flow,) = site.admin("GET", "/api/admin/flows").json()["flows"]
    assert flow | {"flow": "Restart test", "version": v2, "published_by": "ada"} == flow

    back = site.admin("POST", f"/api/admin/flows/{v1}/publish")
    assert back.status_code == 200 and back.json()["previous"] == v2
    site.restart()  # the rollback survives a restart too
    site.whatsapp("447700900003", "Hello")
    assert site.said_to("447700900003", 1) == ["Version one: your name?"]

    site.flow.write_text(V3, "utf-8")  # the operator deploys a new file: it wins
    site.restart()
    assert f"from {site.flow} (the file changed since the last start" in site.log()
    site.whatsapp("447700900004", "Hello")
    assert site.said_to("447700900004", 1) == ["Version three: your name?"]
    flows = site.admin("GET", "/api/admin/flows").json()["flows"]
    assert flows[0]["published_by"] == f"file:{site.flow}"


def test_one_process_serves_the_messaging_and_the_social_flow(site: Site) -> None:
    site.flow = ROOT / "flows" / "messaging.flow"
    site.start(ROOT / "flows" / "social.flow")
    ready = httpx.get(site.url + "/ready").json()
    assert list(ready["flows"]) == ["GBank messaging", "GBank social"]
    said = site.log()
    assert "served by several flows: messages on messenger 104857362910/GBank: " in said
    assert "'GBank messaging' takes them ('GBank social' too)" in said
    site.post("facebook_page", (PAYLOADS / "facebook_page/comment.json").read_bytes())
    site.post("whatsapp", (PAYLOADS / "whatsapp/text.json").read_bytes())
    assert site.server is not None
    site.server.stop()
    ran: dict[str, str] = {}
    with SqliteStore(site.store) as store:
        for event in store.iter_events():
            if event["kind"] == "flow_path":
                conv = store.get_conversation(event["conversation_id"])
                assert conv is not None
                ran[conv.channel] = event["version"]
    assert ran == {
        "facebook_page": ready["flows"]["GBank social"],
        "whatsapp": ready["flows"]["GBank messaging"],
    }


def test_a_transfer_to_a_flow_not_served_beside_it_is_said_at_start(site: Site) -> None:
    site.flow = ROOT / "flows" / "premier.flow"
    site.start()
    said = site.log()
    lines = site.flow.read_text("utf-8").split("\n")
    line = 1 + next(i for i, text in enumerate(lines) if "transfer to flow" in text)
    assert (
        f"'GBank premier' line {line} transfers to flow 'GBank messaging', which is not loaded: "
        "that transfer takes the flow's 'on error'"
    ) in said
