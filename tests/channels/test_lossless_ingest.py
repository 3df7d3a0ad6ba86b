"""Nothing lost on bad input: every event of a request is processed or kept as a dead letter,
whatever the body, and a kept event replays on its own after a fix."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowlang.channels.inbound import read
from flowlang.channels.ingest import IngestResult, ingest, kept_body
from flowlang.cli import main
from flowlang.project import load_project
from flowlang.runtime.engine import Engine
from flowlang.store import SqliteStore
from tests.channels.helpers import FIXTURES

ROOT = Path(__file__).resolve().parents[2]
PAYLOADS = ROOT / "examples" / "payloads"
RECEIVED = datetime(2026, 1, 5, 17, 0, tzinfo=UTC)
CHANNELS = sorted({channel for channel, _ in FIXTURES} | {"sms"})


def _engine(store: SqliteStore) -> Engine:
    project, _ = load_project(ROOT / "flows/messaging.flow", ROOT / "examples/deployment.yaml")
    assert project is not None
    return project.engine(store=store)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, SqliteStore]]:
    """One store for a whole property test: hypothesis runs hundreds of examples."""
    with SqliteStore(tmp_path_factory.mktemp("fuzz") / "s.db") as store:
        yield _engine(store), store


def _ingest_accounted(
    engine: Engine, store: SqliteStore, channel: str, body: bytes
) -> IngestResult:
    """Ingest `body`, checking that it raised nothing and that each of its events was processed
    once or kept once as a dead letter (or ignored by design, with a reason)."""
    letters_before = len(store.dead_letters(include_replayed=True))
    result = ingest(engine, channel, body, received_at=RECEIVED)
    letters = store.dead_letters(include_replayed=True)[letters_before:]
    parts = read(channel, body, received_at=RECEIVED)
    ignored = [p for p in parts if p.error is None and not p.events]
    assert len(result.outcomes) + len(result.dead_letters) + len(ignored) == len(parts)
    assert all(p.ignored for p in ignored)
    flow_failures = [o for o in result.outcomes if o.dead_lettered]
    assert len(letters) == len(result.dead_letters) + len(flow_failures)
    for letter in letters:
        assert letter["reason"]
        if letter["source"].startswith("payload:") and "event" not in letter["payload"]:
            assert kept_body(letter["payload"]) == body  # the request, byte for byte
    return result


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.sampled_from(CHANNELS), st.binary(max_size=300))
def test_arbitrary_bytes_never_raise_and_are_kept(
    shared: tuple[Engine, SqliteStore], channel: str, body: bytes
) -> None:
    engine, store = shared
    _ingest_accounted(engine, store, channel, body)


_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=5),
    st.just("\ud83d"),  # half of an emoji
    st.lists(st.integers(), max_size=2),
    st.just({}),
    st.just("inf"),
    st.just(10**300),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += _paths(child, (*prefix, index))
    return out


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.sampled_from(FIXTURES), st.data())
def test_mutated_real_payloads_never_raise_and_every_event_is_accounted_for(
    shared: tuple[Engine, SqliteStore], fixture: tuple[str, str], data: st.DataObject
) -> None:
    engine, store = shared
    channel, name = fixture
    payload = json.loads((PAYLOADS / name).read_text())
    for _ in range(data.draw(st.integers(1, 3))):
        paths = _paths(payload)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        parent = payload
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(_JUNK)
    body = json.dumps(payload, ensure_ascii=data.draw(st.booleans())).encode(
        "utf-8", "surrogatepass"
    )
    _ingest_accounted(engine, store, channel, body)


def _line_event(n: int, **changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "message",
        "message": {"type": "text", "id": f"m{n}", "text": f"message {n}"},
        "webhookEventId": f"evt-{n}",
        "timestamp": 1767625200000 + n,
        "source": {"type": "user", "userId": f"U{n:032x}"},
        "replyToken": f"token-{n}",
    }
    event.update(changes)
    return event


def test_one_bad_event_of_a_batch_is_kept_alone_and_replays_after_the_fix(
    tmp_path: Path,
) -> None:
    bad = _line_event(2, source={"type": "user"})  # no userId: who wrote it?
    batch = {"destination": "U4af4980629", "events": [_line_event(1), bad, _line_event(3)]}
    store_path = tmp_path / "s.db"
    with SqliteStore(store_path) as store:
        result = ingest(_engine(store), "line", json.dumps(batch), received_at=RECEIVED)
        assert [o.event.event_id for o in result.outcomes] == ["evt-1", "evt-3"]  # type: ignore[union-attr]
        assert result.dead_letters == [
            "line payload: events[1].source.userId: missing (messages without a user id "
            "cannot be answered)"
        ]
        (letter,) = store.dead_letters()
        kept = json.loads(letter["payload"]["body"])
        assert letter["payload"]["event"] == "events[1]"
        assert kept == {"destination": "U4af4980629", "events": [bad]}  # that event alone
        # The fix: here the event is corrected in the kept letter.
        kept["events"][0]["source"]["userId"] = f"U{2:032x}"
        fixed = dict(letter["payload"], body=json.dumps(kept))
        store.db.execute(
            "UPDATE dead_letters SET payload = ? WHERE id = ?", (json.dumps(fixed), letter["id"])
        )
    out = CliRunner().invoke(
        main,
        ["replay", "--store", str(store_path), str(ROOT / "flows/messaging.flow"), "--all"],
    )
    assert out.exit_code == 0, out.output
    assert "#1: replayed, 1 event(s)" in out.output
    with SqliteStore(store_path) as store:
        for n in (1, 2, 3):
            customer = store.find_customer("line", f"U{n:032x}")
            assert customer is not None, n
            texts = [m["content"].get("text") for m in store.history(customer.id).messages]
            assert texts[0] == f"message {n}"


@pytest.mark.parametrize(
    ("channel", "body", "reason"),
    [
        (
            "line",
            json.dumps(
                {
                    "destination": "U1",
                    "events": [
                        _line_event(
                            7, message={"type": "text", "id": "m7", "text": "broken emoji \ud83d"}
                        )
                    ],
                }
            ).encode(),
            "line payload: events[0].message.text: contains a lone surrogate \\ud83d "
            "(half of a character)",
        ),
        ("web", b"[" * 100_000 + b"]" * 100_000, "not JSON we can read: nested too deeply"),
        (
            "web",
            json.dumps(
                {
                    "type": "message",
                    "id": "w-deep",
                    "visitor": {"id": "v-deep"},
                    "text": "hi",
                    "extra": json.loads('{"a":' * 500 + "1" + "}" * 500),
                }
            ).encode(),
            "web payload: extra.a.a.a",
        ),
        (
            "sms",
            b"MessageSid=SMinf&From=%2B447700900456&To=%2B447480000000&Body=Hi&NumMedia=inf",
            "sms payload: NumMedia: expected a finite number, got 'inf'",
        ),
        (
            "sms",
            b"MessageSid=SMnan&From=%2B447700900456&To=%2B447480000000&Body=Hi&NumMedia=nan",
            "sms payload: NumMedia: expected a finite number, got 'nan'",
        ),
        (
            "sms",
            b"MessageSid=SMhalf&From=%2B447700900456&To=%2B447480000000&Body=Hi&NumMedia=1.5",
            "sms payload: NumMedia: expected a whole number, 0 or more, got '1.5'",
        ),
        ("web", b'{"id": 1' + b"9" * 5000 + b"}", "not JSON we can read"),
    ],
    ids=["lone-surrogate", "nested-brackets", "nested-500", "inf", "nan", "fraction", "digits"],
)
def test_inputs_that_used_to_escape_ingest_are_dead_letters_saying_where_and_what(
    tmp_path: Path, channel: str, body: bytes, reason: str
) -> None:
    with SqliteStore(tmp_path / "s.db") as store:
        result = ingest(_engine(store), channel, body, received_at=RECEIVED)
        assert result.outcomes == []
        (letter,) = store.dead_letters()
        assert reason in letter["reason"] and result.dead_letters == [letter["reason"]]


def test_a_body_that_is_not_utf8_is_kept_byte_for_byte(tmp_path: Path) -> None:
    body = b'{"type": "message", "text": "caf\xe9"}'  # Latin-1, not UTF-8
    with SqliteStore(tmp_path / "s.db") as store:
        result = ingest(_engine(store), "web", body, received_at=RECEIVED)
        (letter,) = store.dead_letters()
    assert result.error == "web payload: (body): not UTF-8 (byte 32)"
    assert "body" not in letter["payload"]
    assert kept_body(letter["payload"]) == body


def test_text_with_half_an_emoji_is_kept_not_raised(tmp_path: Path) -> None:
    """A str body (a host's decoded request) with a lone surrogate cannot even be encoded."""
    with SqliteStore(tmp_path / "s.db") as store:
        result = ingest(_engine(store), "web", '{"text": "\ud83d"}', received_at=RECEIVED)
        (letter,) = store.dead_letters()
    assert result.error is not None and "not UTF-8" in result.error
    assert kept_body(letter["payload"]) == '{"text": "\ud83d"}'.encode("utf-8", "surrogatepass")


def test_replay_reads_a_kept_body_that_is_not_utf8_byte_for_byte(tmp_path: Path) -> None:
    store_path = tmp_path / "s.db"
    good = (PAYLOADS / "web/message.json").read_bytes()
    latin1 = good.replace(b"Hello", b"H\xe9llo")
    with SqliteStore(store_path) as store:
        ingest(_engine(store), "web", latin1, received_at=RECEIVED)
    flow = str(ROOT / "flows/messaging.flow")
    out = CliRunner().invoke(main, ["replay", "--store", str(store_path), flow, "--all"])
    assert out.exit_code == 1, out.output
    assert "#1: failed again, kept as a new dead letter: web payload: (body): not UTF-8" in (
        out.output
    )
    with SqliteStore(store_path) as store:
        (again,) = store.dead_letters()
        assert kept_body(again["payload"]) == latin1  # still the very bytes received


def test_a_form_answer_nested_too_deep_is_refused_where_it_is() -> None:
    payload = json.loads((PAYLOADS / "whatsapp/flow_response.json").read_text())
    reply = payload["entry"][0]["changes"][0]["value"]["messages"][0]["interactive"]["nfm_reply"]
    reply["response_json"] = '{"a":' * 300 + "1" + "}" * 300
    (part,) = read("whatsapp", json.dumps(payload), received_at=RECEIVED)
    assert part.error is not None and part.events == []
    assert part.error.field.endswith("messages[0].interactive.nfm_reply.response_json")
    assert part.error.problem.endswith("nested deeper than 100 levels")


def test_an_error_names_the_field_as_the_request_has_it_not_as_the_kept_event_has_it() -> None:
    payload = json.loads((PAYLOADS / "whatsapp/text.json").read_text())
    second = json.loads(json.dumps(payload["entry"][0]))
    second["changes"][0]["value"]["metadata"]["display_phone_number"] = {"number": 1}
    second["changes"][0]["value"]["messages"].insert(0, {"id": "wamid.no-sender"})
    payload["entry"].append(second)
    parts = read("whatsapp", json.dumps(payload), received_at=RECEIVED)
    assert [str(p.error) if p.error else len(p.events) for p in parts] == [
        1,
        "whatsapp payload: entry[1].changes[0].value.metadata.display_phone_number: "
        "expected text, got an object",
        "whatsapp payload: entry[1].changes[0].value.metadata.display_phone_number: "
        "expected text, got an object",
    ]
    fixed_metadata = payload["entry"][0]["changes"][0]["value"]["metadata"]
    parts[1].body["entry"][0]["changes"][0]["value"]["metadata"] = fixed_metadata  # type: ignore[index]
    again = read("whatsapp", json.dumps(parts[1].body), received_at=RECEIVED)
    assert [str(p.error) for p in again] == [
        "whatsapp payload: entry[0].changes[0].value.messages[0].from: missing "
        "(and no `from_user_id` either: who sent it?)"
    ]


def test_one_whatsapp_message_without_from_loses_nothing_else_of_its_batch(tmp_path: Path) -> None:
    payload = json.loads((PAYLOADS / "whatsapp/text.json").read_text())
    messages = payload["entry"][0]["changes"][0]["value"]["messages"]
    first = messages[0]
    stray = dict(first, id="wamid.stray")
    del stray["from"]
    third = dict(first, id="wamid.third", text={"body": "Are you there?"})
    messages[:] = [first, stray, third]
    with SqliteStore(tmp_path / "s.db") as store:
        result = ingest(_engine(store), "whatsapp", json.dumps(payload), received_at=RECEIVED)
        assert [o.event.event_id for o in result.outcomes] == [first["id"], "wamid.third"]  # type: ignore[union-attr]
        assert result.dead_letters == [
            "whatsapp payload: entry[0].changes[0].value.messages[1].from: missing "
            "(and no `from_user_id` either: who sent it?)"
        ]
        customer = store.find_customer("whatsapp", "447700900123")
        assert customer is not None
        texts = [m["content"]["text"] for m in store.history(customer.id).messages]
        assert "Are you there?" in texts
