"""What the API tests share: a small flow, users with tokens, customer messages as signed
webhooks, the app under TestClient or as a real uvicorn server for the live stream."""

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
from fastapi import FastAPI
from fastapi.testclient import TestClient
from ruamel.yaml import YAML

from flowlang.runtime.memory import RecordingAdapter
from flowlang.runtime.ports import PendingSend
from flowlang.runtime.users import new_token, token_hash
from flowlang.service import create_app
from flowlang.service.settings import Settings
from flowlang.store import SqliteStore
from tests.service.helpers import settings_for, signed_headers, whatsapp_text, write_deployment
from tests.service.threaded_server import threaded_server

# WhatsApp goes to Cards, whose agents answer at once (auto-answer); web asks a question first,
# then goes to Overflow, whose one agent (frank) is offered it and accepts by hand.
FLOW = """\
flow "API test"
serve messages on web account "gbank-web", whatsapp number "+442079460000"

state start:
    if message.channel == "whatsapp":
        route to queue "Cards"
    else:
        ask "{question}" into name wait 10m:
            on answer:
                reply "Thanks, {thanks}"
        route to queue "Overflow"
"""
V1 = FLOW.format(question="Version one: your name?", thanks="version one")
V2 = FLOW.format(question="Version two: your name?", thanks="version two")
DIRECT = """\
flow "Direct"
serve messages on whatsapp number "+442079460000"

state start:
    route to queue "Overflow"
"""
WA_TOKEN_ENV = "TEST_WHATSAPP_ACCESS_TOKEN"

USERS = {
    "frank": "agent",
    "alice": "agent",
    "kenji": "agent",
    "sam": "supervisor",
    "ada": "admin",
}


@dataclass
class Api:
    """A running service, its users' tokens and what it sent."""

    settings: Settings
    tokens: dict[str, str]
    sent: RecordingAdapter
    app: FastAPI
    client: Any = None  # TestClient, or httpx.Client against a live server
    _ids: Iterator[int] = field(default_factory=lambda: iter(range(1, 10**6)))

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def get(self, user: str, path: str, **kw: Any) -> httpx.Response:
        response: httpx.Response = self.client.get(path, headers=self.auth(user), **kw)
        return response

    def post(self, user: str, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        response: httpx.Response = self.client.post(
            path, json=body if body is not None else {}, headers=self.auth(user), **kw
        )
        return response

    def put(self, user: str, path: str, body: Any) -> httpx.Response:
        response: httpx.Response = self.client.put(path, json=body, headers=self.auth(user))
        return response

    def web(self, visitor: str, text: str, at: datetime | None = None) -> None:
        """A web chat message from `visitor`, signed as the widget signs it."""
        message = {
            "type": "message",
            "id": f"web-{next(self._ids)}",
            "widget": "gbank-web",
            "visitor": {"id": visitor, "name": "Eve"},
            "text": text,
            "timestamp": (at or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
        }
        self._webhook("web", message)

    def whatsapp(self, wa_id: str, text: str, at: datetime) -> None:
        """A WhatsApp text from `wa_id`, sent at `at`, signed as Meta signs it."""
        self._webhook("whatsapp", whatsapp_text(wa_id, f"wamid.{next(self._ids)}", text, at=at))

    def _webhook(self, channel: str, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        answer = self.client.post(
            f"/webhooks/{channel}", content=body, headers=signed_headers(channel, body)
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["accepted"] == 1, answer.text
        self.settled()

    def settled(self) -> None:
        """Wait until the worker has processed every event made durable and the outbox's
        thread has delivered every message (the outbox is empty)."""
        for _ in range(1000):
            if self.client.get("/ready").json()["unprocessed"] == 0 and not self.outbox():
                return
            time.sleep(0.01)
        raise AssertionError("events still unprocessed or messages undelivered")

    def outbox(self) -> list[PendingSend]:
        """The messages waiting in the outbox, read on a connection of its own."""
        with SqliteStore(self.settings.store) as store:
            return store.pending_outbound()

    def work(self, agent: str) -> dict[str, str]:
        """The agent's interactions: conversation id -> offered / assigned / after_call_work."""
        answer = self.get(agent, "/api/agent/interactions")
        assert answer.status_code == 200, answer.text
        return {item["conversation_id"]: item["state"] for item in answer.json()}


def make_api(folder: Path, flow: str = V1, vendor: str | None = None, present: bool = True) -> Api:
    """The service for `flow` on a fresh store with the users of USERS (not started). Its
    messages go to a recording adapter; with `vendor` (a base URL), WhatsApp's go by the
    service's own sender to that vendor API, authorised by the variable WA_TOKEN_ENV. The
    agents start available, unless not `present` (then as the service starts them)."""
    path = folder / "api.flow"
    path.write_text(flow, "utf-8")
    deployment = write_deployment(folder, present=present)
    settings = settings_for(folder, flows=(path,), deployment=deployment)
    if vendor is not None:
        _send_whatsapp_to(settings.deployment, vendor)
    tokens = {name: new_token() for name in USERS}
    with SqliteStore(settings.store) as store:
        for name, role in USERS.items():
            store.add_user(name, role, token_hash(tokens[name]), datetime.now(UTC))
    sent = RecordingAdapter()
    app = create_app(settings) if vendor else create_app(settings, adapters=[sent])
    return Api(settings, tokens, sent, app)


def _send_whatsapp_to(deployment: Path, base_url: str) -> None:
    yaml = YAML()
    data: Any = yaml.load(deployment.read_text("utf-8"))
    connection = data["channels"]["whatsapp"]["connection"]
    connection["access_token_env"] = WA_TOKEN_ENV
    connection["api_base"] = base_url
    out = io.StringIO()
    yaml.dump(data, out)
    deployment.write_text(out.getvalue(), "utf-8")


def revoke(api: Api, name: str) -> None:
    """Revoke a token as `flowlang users revoke` does: on a connection of its own."""
    with SqliteStore(api.settings.store) as store:
        assert store.revoke_user(name, datetime.now(UTC))


def under_test_client(api: Api) -> Iterator[Api]:
    with TestClient(api.app) as client:
        api.client = client
        yield api


def live_server(api: Api) -> Iterator[Api]:
    """The app as a real uvicorn server on a free loopback port (the live stream needs one)."""
    with (
        threaded_server(api.app, timeout_graceful_shutdown=2) as port,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client,
    ):
        api.client = client
        yield api


class Stream:
    """An agent's live stream, read event by event."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.iter_lines()

    def next(self) -> tuple[str, dict[str, Any]]:
        """The next event (heartbeats skipped): its type and data."""
        kind, data = "", ""
        for line in self._lines:
            if line.startswith(":"):
                continue
            if line.startswith("event: "):
                kind = line[len("event: ") :]
            elif line.startswith("data: "):
                data = line[len("data: ") :]
            elif not line and kind:
                return kind, json.loads(data)
        raise AssertionError("the stream ended")

    def until(self, kind: str) -> dict[str, Any]:
        """Read up to the next event of `kind`; its data."""
        while True:
            found, data = self.next()
            if found == kind:
                return data
