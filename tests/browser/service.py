"""The service the browser tests drive: `flowlang serve` as a real process on a free loopback
port, with users and their tokens, WhatsApp sent to the fake vendor, and customers' messages
given as signed webhooks."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from ruamel.yaml import YAML

from flowlang.runtime.users import new_token, token_hash
from flowlang.store import SqliteStore
from tests.fake_vendor import FakeVendor
from tests.service.helpers import (
    environment,
    payload,
    signed_headers,
    whatsapp_text,
    write_deployment,
)
from tests.service.process import ServiceProcess

# WhatsApp goes to Overflow, whose one agent (frank) accepts offers by hand, but a message
# starting "Late" goes to Cards (alice, kenji: auto-answer, so that a conversation whose window
# has closed is still given to an agent); web chat goes to Retail Banking (alice, bob, carmen,
# kenji: auto-answer, a wrap-up code required); a web message starting "Fees" is first answered
# with the deployment's card of fees.
FLOW = """\
flow "Workspace test"
serve messages on web account "gbank-web", whatsapp number "+442079460000"

state start:
    set participant data "intent" to "card_lost"
    set conversation data "reason" to "card lost abroad"
    if message.channel == "whatsapp":
        if message.text matches "^Late":
            route to queue "Cards"
        else:
            route to queue "Overflow"
    else:
        if message.text matches "^Fees":
            reply template "fees_card"
        route to queue "Retail Banking"
"""
USERS = {
    "frank": "agent",
    "alice": "agent",
    "kenji": "agent",
    "erin": "agent",
    "sam": "supervisor",
}
WA_TOKEN_ENV = "TEST_WHATSAPP_ACCESS_TOKEN"
WA_PHONE_NUMBER_ID = "106540352242922"


@dataclass
class Running:
    """A running service: its URL, its users' tokens and the fake vendor it sends to."""

    url: str
    tokens: dict[str, str]
    vendor: FakeVendor
    process: ServiceProcess
    store: Path
    client: httpx.Client
    _ids: Iterator[int] = field(default_factory=lambda: iter(range(1, 10**6)))

    def api(self, user: str, method: str, path: str, body: Any = None) -> httpx.Response:
        """A call of the API with `user`'s token (as curl would make it)."""
        headers = {"Authorization": f"Bearer {self.tokens[user]}"}
        return self.client.request(method, path, json=body, headers=headers)

    def only_available(self, *agents: str) -> None:
        """`agents` available, every other agent of the deployment away (set as a supervisor),
        so that the ACD's choice is known."""
        for presence in self.api("sam", "GET", "/api/supervisor/agents").json():
            state = "available" if presence["agent"] in agents else "away"
            answer = self.api(
                "sam",
                "PUT",
                f"/api/supervisor/agents/{presence['agent']}/presence",
                {"state": state},
            )
            assert answer.status_code == 200, answer.text

    def web(self, visitor: str, text: str, name: str = "Eve", at: datetime | None = None) -> None:
        """A web chat message from `visitor`, signed as the widget signs it."""
        message = {
            "type": "message",
            "id": f"web-{next(self._ids)}",
            "widget": "gbank-web",
            "visitor": {"id": visitor, "name": name},
            "text": text,
            "timestamp": _z(at or datetime.now(UTC)),
        }
        self._webhook("web", message)

    def whatsapp(
        self, wa_id: str, text: str, name: str = "Ben", at: datetime | None = None
    ) -> None:
        """A WhatsApp text from `wa_id`, sent at `at`, signed as Meta signs it."""
        event_id = f"wamid.{next(self._ids)}"
        self._webhook("whatsapp", whatsapp_text(wa_id, event_id, text, name=name, at=at))

    def x_mention(self) -> None:
        """X's own example of a post mentioning the business (examples/payloads/x)."""
        self._webhook("x_public", json.loads(payload("x_public")))

    def _webhook(self, channel: str, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        answer = self.client.post(
            f"/webhooks/{channel}", content=body, headers=signed_headers(channel, body)
        )
        assert answer.status_code == 200, answer.text
        self.process.settle()

    def sent_to_vendor(self, timeout: float = 30.0) -> list[dict[str, Any]]:
        """The WhatsApp send requests the fake vendor received (waits for at least one: the
        outbox sends within a second on a quiet machine, longer in a loaded test run)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [
                r.json()
                for r in self.vendor.requests
                if r.path == f"/{WA_PHONE_NUMBER_ID}/messages"
            ]
            if found:
                return found
            time.sleep(0.05)
        return []


def _z(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def deployment_for(folder: Path, vendor: FakeVendor, extra: dict[str, Any] | None) -> Path:
    """The example deployment with every channel's secrets, WhatsApp sent to `vendor`, and
    `extra` top-level sections merged in."""
    path = write_deployment(folder)
    yaml = YAML()
    data: Any = yaml.load(path.read_text("utf-8"))
    connection = data["channels"]["whatsapp"]["connection"]
    connection["access_token_env"] = WA_TOKEN_ENV
    connection["api_base"] = vendor.base_url
    for key, value in (extra or {}).items():
        data[key] = value
    out = io.StringIO()
    yaml.dump(data, out)
    path.write_text(out.getvalue(), "utf-8")
    return path


def start_service(
    folder: Path, vendor: FakeVendor, flow: str = FLOW, extra: dict[str, Any] | None = None
) -> Running:
    """`flowlang serve` on a fresh store with the users of USERS, started and ready."""
    flow_path = folder / "workspace.flow"
    flow_path.write_text(flow, "utf-8")
    deployment = deployment_for(folder, vendor, extra)
    store = folder / "cc.sqlite"
    tokens = {name: new_token() for name in USERS}
    with SqliteStore(store) as opened:
        for name, role in USERS.items():
            opened.add_user(name, role, token_hash(tokens[name]), datetime.now(UTC))
    env = {**environment(), WA_TOKEN_ENV: "wa-token"}
    process = ServiceProcess(flow_path, deployment, store, env, folder / "service.log").start()
    client = httpx.Client(base_url=process.url, timeout=10)
    return Running(process.url, tokens, vendor, process, store, client)
