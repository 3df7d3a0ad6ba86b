"""What the service tests share: a deployment with every channel's connection, its secrets in
the environment, signed requests in each vendor's way, and the app under TestClient."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from ruamel.yaml import YAML

from flowlang.channels.signatures import SIGNATURE_HEADERS, expected_signature
from flowlang.service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PAYLOADS = ROOT / "examples" / "payloads"
EXAMPLE_DEPLOYMENT = ROOT / "examples" / "deployment.yaml"
FLOW = ROOT / "flows" / "messaging.flow"
PUBLIC_URL = "https://cc.example.com"

CHANNELS = [
    "web",
    "whatsapp",
    "messenger",
    "line",
    "instagram",
    "sms",
    "x_dm",
    "x_public",
    "facebook_page",
]

PAYLOAD_OF = {
    "whatsapp": "whatsapp/text.json",
    "messenger": "messenger/message.json",
    "instagram": "instagram/message.json",
    "facebook_page": "facebook_page/comment.json",
    "x_dm": "x/dm.json",
    "x_public": "x/mention.json",
    "line": "line/message.json",
    "sms": "sms/incoming.txt",
    "web": "web/message.json",
}
"""One real payload per channel (a message each), under examples/payloads."""


def secret_env(channel: str) -> str:
    return f"TEST_{channel.upper()}_SECRET"


def verify_env(channel: str) -> str:
    return f"TEST_{channel.upper()}_VERIFY"


def secret_of(channel: str) -> str:
    return f"s3cret-{channel}"


def verify_token_of(channel: str) -> str:
    return f"verify-{channel}"


METRICS_TOKEN_ENV = "TEST_METRICS_TOKEN"
METRICS_TOKEN = "metrics-s3cret"
METRICS_AUTH = {"Authorization": f"Bearer {METRICS_TOKEN}"}
"""What a Prometheus scraper of the test deployment sends to /metrics."""


def environment() -> dict[str, str]:
    """The environment that configures every channel's secrets and the metrics token."""
    env = {secret_env(c): secret_of(c) for c in CHANNELS}
    env.update({verify_env(c): verify_token_of(c) for c in CHANNELS})
    env[METRICS_TOKEN_ENV] = METRICS_TOKEN
    return env


def write_deployment(
    folder: Path,
    channels: list[str] | None = None,
    unstaffed: str | None = None,
    present: bool = True,
) -> Path:
    """The example deployment with a connection for each channel (secrets by variable name)
    and the metrics token's variable;
    the queue `unstaffed` has no members (its interactions wait until they time out). Its
    agents start available (`state: available`: in the service, an agent without a state is
    offline until they set it), unless not `present`."""
    yaml = YAML()
    data: Any = yaml.load(EXAMPLE_DEPLOYMENT.read_text("utf-8"))
    if present:
        for agent in data["agents"].values():
            agent.setdefault("state", "available")
    if unstaffed is not None:
        data["queues"][unstaffed]["members"] = []
    for name in channels if channels is not None else CHANNELS:
        data["channels"][name]["connection"] = {
            "signing_secret_env": secret_env(name),
            "verify_token_env": verify_env(name),
        }
    data["access"] = {"metrics_token_env": METRICS_TOKEN_ENV}
    out = io.StringIO()
    yaml.dump(data, out)
    path = folder / "deployment.yaml"
    path.write_text(out.getvalue(), "utf-8")
    return path


def settings_for(folder: Path, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "flows": (FLOW,),
        "store": folder / "cc.sqlite",
        "public_url": PUBLIC_URL,
        "delivery_interval": 0.2,
    }
    values.update(changes)
    if "deployment" not in values:
        values["deployment"] = write_deployment(folder)
    return Settings(**values)


def payload(channel: str) -> bytes:
    return (PAYLOADS / PAYLOAD_OF[channel]).read_bytes()


def signed_headers(channel: str, body: bytes, path: str | None = None) -> dict[str, str]:
    """The headers the vendor sends with `body`, signed with the channel's test secret."""
    params: dict[str, str] = {}
    url = ""
    headers = {"Content-Type": "application/json"}
    if channel == "sms":
        params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        url = PUBLIC_URL + (path or f"/webhooks/{channel}")
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    signature = expected_signature(channel, body, secret_of(channel), url=url, params=params)
    headers[SIGNATURE_HEADERS[channel]] = signature
    return headers


def whatsapp_batch(texts: list[tuple[str, str, str]]) -> dict[str, Any]:
    """One WhatsApp webhook carrying several text messages, (wa_id, event id, text) each, as
    Meta batches them (one change per message)."""
    changes = [
        whatsapp_text(wa_id, event_id, text)["entry"][0]["changes"][0]
        for wa_id, event_id, text in texts
    ]
    return {"object": "whatsapp_business_account", "entry": [{"id": "1022", "changes": changes}]}


def whatsapp_text(
    wa_id: str, event_id: str, text: str, *, name: str = "Ben", at: datetime | None = None
) -> dict[str, Any]:
    """A WhatsApp Cloud API webhook with one text message from `wa_id`, sent at `at` (now), to
    the deployment's number, as Meta posts it; sign its JSON with `signed_headers`."""
    message = {
        "from": wa_id,
        "id": event_id,
        "timestamp": str(int((at or datetime.now(UTC)).timestamp())),
        "type": "text",
        "text": {"body": text},
    }
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "442079460000", "phone_number_id": "1065"},
        "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
        "messages": [message],
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1022", "changes": [{"field": "messages", "value": value}]}],
    }
