"""dry-run as a user sees it: failed deliveries reported and counted, `at:` on webhook events,
and one customer per sample conversation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from flowlang import cli
from flowlang.channels.outbound import HttpAdapter
from tests.ports import free_port

FLOW = 'flow "Hello"\nserve messages on web\n\nstate start:\n    reply "Hello"\n'
WEB_PAYLOAD = {
    "type": "message",
    "id": "web-msg-0001",
    "widget": "gbank-web",
    "visitor": {"id": "web-visitor-5c1d", "name": "Eve"},
    "text": "Hello",
    "timestamp": "2026-01-05T16:00:00Z",
}


def _files(tmp_path: Path, samples: str) -> tuple[str, str]:
    flow = tmp_path / "hello.flow"
    flow.write_text(FLOW, "utf-8")
    (tmp_path / "web.json").write_text(json.dumps(WEB_PAYLOAD), "utf-8")
    messages = tmp_path / "samples.yaml"
    messages.write_text(samples, "utf-8")
    return str(flow), str(messages)


def _dry_run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli.main, ["dry-run", *args])
    return result.exit_code, result.output


def test_an_unreachable_outbound_endpoint_is_reported_counted_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def quick(spec: str) -> Any:  # the real adapter, without sleeping between attempts
        return HttpAdapter(spec.removeprefix("http:"), retries=1, sleep=lambda _s: None)

    monkeypatch.setattr(cli, "outbound_adapter", quick)
    samples = "conversations:\n  - channel: web\n    events:\n      - message: hi\n"
    flow, messages = _files(tmp_path, samples)
    url = f"http://127.0.0.1:{free_port()}/outbound"  # nothing listens there
    code, out = _dry_run(flow, "-m", messages, "--outbound", f"http:{url}")
    assert code == 1, out
    assert "!! not delivered: DeliveryError" in out and "attempt 1; retried at" in out
    assert out.rstrip().endswith("1 not delivered by an --outbound adapter")
    code, out = _dry_run(flow, "-m", messages, "--outbound", f"http:{url}", "--format", "json")
    data = json.loads(out)
    assert code == 1 and len(data["not_delivered"]) == 1
    assert data["not_delivered"][0]["content"]["text"] == "Hello"


def test_at_on_a_webhook_event_replaces_the_payloads_time(tmp_path: Path) -> None:
    samples = (
        "conversations:\n  - channel: web\n    events:\n"
        "      - {at: 2026-01-07T08:30:00Z, webhook: web.json}\n"
    )
    flow, messages = _files(tmp_path, samples)
    code, out = _dry_run(flow, "-m", messages, "--format", "json")
    assert code == 0, out
    assert json.loads(out)["events"][0]["at"] == "2026-01-07T08:30:00+00:00"


def test_webhook_and_message_events_of_one_sample_conversation_are_one_customer(
    tmp_path: Path,
) -> None:
    samples = (
        "conversations:\n  - channel: web\n    events:\n"
        "      - webhook: web.json\n      - {at: +1m, message: still there?}\n"
    )
    flow, messages = _files(tmp_path, samples)
    code, out = _dry_run(flow, "-m", messages, "--format", "json")
    assert code == 0, out
    events = json.loads(out)["events"]
    assert len({e["conversation_id"] for e in events}) == 1


def test_a_customer_id_other_than_the_webhooks_sender_is_refused(tmp_path: Path) -> None:
    samples = (
        "conversations:\n  - channel: web\n    customer: {id: someone-else}\n    events:\n"
        "      - webhook: web.json\n"
    )
    flow, messages = _files(tmp_path, samples)
    code, out = _dry_run(flow, "-m", messages)
    assert code == 1
    assert "comes from 'web-visitor-5c1d', but this conversation's customer is" in out
    assert "samples.yaml:5:" in out
