"""`dry-run --store`, `flowlang store ...` and `flowlang replay`, as a user runs them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowlang.cli import main
from flowlang.service.engine_main import engine_lock
from flowlang.store import open_store
from flowlang.store.leadership import Leadership

ROOT = Path(__file__).resolve().parent.parent.parent
FLOW = ["flows/messaging.flow", "-d", "examples/deployment.yaml"]


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def _dry_run(store: str | Path) -> str:
    code, out = invoke(
        "dry-run", *FLOW, "-m", "examples/messages.yaml", "--allow-blocked", "--store", str(store)
    )
    assert code == 0, out
    return out


def _first_step(out: str) -> str:
    return out.split("\n\n")[0]


def test_a_second_dry_run_on_the_same_store_knows_the_customer_and_their_agent(
    durable_location: str | Path,
) -> None:
    store = durable_location
    first = _first_step(_dry_run(store))
    assert "returning customer" not in first
    second = _first_step(_dry_run(store))
    assert "returning customer" in second
    assert "agent bob" in second and "acd: accepted by bob" in second


def test_store_customer_lists_identities_and_conversations(
    durable_location: str | Path,
) -> None:
    store = durable_location
    _dry_run(store)
    code, out = invoke("store", "customer", "--store", str(store), "phone:+44 7700 900123")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].split()[1:] == ["Ben", "Carter", "+447700900123"]
    assert "  whatsapp: 447700900123" in lines
    assert any(line.strip().startswith("conv") and "whatsapp" in line for line in lines)


def test_store_history_pages_back_without_losing_a_message(
    durable_location: str | Path,
) -> None:
    store = durable_location
    _dry_run(store)
    code, whole = invoke("store", "history", "--store", str(store), "c1", "--format", "json")
    assert code == 0, whole
    everything = json.loads(whole)
    assert everything["before"] is None and len(everything["messages"]) >= 4
    texts: list[str] = []
    before: list[str] = []
    while True:
        code, out = invoke(
            "store",
            "history",
            "--store",
            str(store),
            "c1",
            "--limit",
            "2",
            "--format",
            "json",
            *before,
        )
        page = json.loads(out)
        assert len(page["messages"]) <= 2
        texts = [m["content"].get("text", "") for m in page["messages"]] + texts
        if page["before"] is None:
            break
        before = ["--before", str(page["before"])]
    assert texts == [m["content"].get("text", "") for m in everything["messages"]]


def test_store_history_of_an_unknown_customer_says_how_to_name_one(
    durable_location: str | Path,
) -> None:
    store = durable_location
    _dry_run(store)
    code, out = invoke("store", "history", "--store", str(store), "phone:+15550000000")
    assert code == 2
    assert "no customer 'phone:+15550000000'" in out and "phone:+447700900123" in out


def test_a_file_that_is_not_a_store_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database\n" * 50)
    code, out = invoke("store", "dead-letters", "--store", str(notes))
    assert code == 2
    assert "notes.txt: cannot open as a flowlang store: file is not a database" in out
    assert "Traceback" not in out


def test_a_postgres_store_that_cannot_be_reached_is_a_usage_error_without_the_password() -> None:
    url = "postgresql://cc:s3cret@127.0.0.1:1/cc?connect_timeout=1"
    code, out = invoke("store", "dead-letters", "--store", url)
    assert code == 2
    assert "postgresql://cc:***@127.0.0.1:1/cc?connect_timeout=1: cannot connect:" in out
    assert "s3cret" not in out and "Traceback" not in out


def test_a_missing_store_file_is_still_refused_before_anything_opens(tmp_path: Path) -> None:
    code, out = invoke("store", "dead-letters", "--store", str(tmp_path / "nope.db"))
    assert code == 2 and "does not exist" in out
    assert not (tmp_path / "nope.db").exists()


def test_reports_from_a_postgres_store_are_those_from_a_sqlite_one(
    tmp_path: Path, postgres_url: str
) -> None:
    reports = []
    for store in (str(tmp_path / "cc.db"), postgres_url):
        _dry_run(store)
        code, out = invoke(
            "report", "queues", "--store", store, "-d", "examples/deployment.yaml", "--format",
            "json",
        )  # fmt: skip
        assert code == 0, out
        reports.append(json.loads(out))
    assert reports[0] == reports[1] and reports[0]


def _letter(store: str | Path, payload: dict[str, object]) -> None:
    with open_store(store) as db, db.transaction():
        db.dead_letter("inbound:web", payload, "CRM timed out", datetime(2026, 1, 5, tzinfo=UTC))


def _web_message(event_id: str, text: str) -> dict[str, object]:
    return {
        "event_id": event_id,
        "channel": "web",
        "kind": "message",
        "account": "gbank-web",
        "sender_id": "web-visitor-9",
        "sender_name": "Cleo",
        "text": text,
        "timestamp": "2026-01-05T10:00:00+00:00",
    }


def test_replay_runs_a_dead_letter_and_settles_it(
    durable_location: str | Path,
) -> None:
    store = durable_location
    _letter(store, _web_message("w-1", "Hello, is anyone there?"))
    code, out = invoke("store", "dead-letters", "--store", str(store))
    assert code == 0 and "#1 " in out and "inbound:web: CRM timed out" in out

    code, out = invoke("replay", "--store", str(store), *FLOW, "--all")
    assert code == 0, out
    replayed, waiting = out.splitlines()[-2:]
    assert replayed.startswith("#1: replayed (conv")
    assert waiting == (
        "1 message(s) wait in the outbox (flowlang store outbox); the host delivers them, "
        "or replay again with --outbound"
    )

    code, out = invoke("store", "dead-letters", "--store", str(store))
    assert out.strip() == "0 dead letter(s)"
    code, out = invoke("store", "dead-letters", "--store", str(store), "--all")
    assert "(replayed " in out
    code, out = invoke("store", "history", "--store", str(store), "web:web-visitor-9")
    assert "<- Hello, is anyone there?" in out


def test_replay_reports_what_it_cannot_replay_and_exits_1(tmp_path: Path) -> None:
    store = tmp_path / "cc.db"
    _letter(store, {"event_id": "w-2", "channel": "web"})
    code, out = invoke("replay", "--store", str(store), *FLOW, "--id", "1", "--id", "7")
    assert code == 1
    assert "#7: no such dead letter waiting" in out
    assert "#1: its payload is not a valid inbound event" in out
    code, out = invoke("replay", "--store", str(store), *FLOW)
    assert code == 2 and "say which: --id N (repeatable) or --all" in out


def test_replay_with_outbound_delivers_the_outbox_and_resends_given_up_messages(
    tmp_path: Path,
) -> None:
    store, sent = tmp_path / "cc.db", tmp_path / "sent.jsonl"
    _letter(store, _web_message("w-3", "Hello?"))
    invoke("replay", "--store", str(store), *FLOW, "--all")  # no adapter: the reply waits
    code, out = invoke("store", "outbox", "--store", str(store))
    assert code == 0, out
    first, total = out.splitlines()
    assert (
        first.startswith("#1 2026-01-05 10:00:00 conv") and "web -> web-visitor-9: Welcome" in first
    )
    assert first.endswith("(0 attempt(s))") and total == "1 message(s) waiting"

    message = json.loads(invoke("store", "outbox", "--store", str(store), "--format", "json")[1])[
        0
    ]["message"]
    with open_store(store) as db, db.transaction():
        at = datetime(2026, 1, 5, 11, tzinfo=UTC)
        db.dead_letter(
            "outbound:web",
            {**message, "content": {"kind": "text", "text": "Again"}},
            "HTTP 503 five times",
            at,
        )
    code, out = invoke(
        "replay", "--store", str(store), *FLOW, "--id", "2", "--outbound", f"jsonl:{sent}"
    )
    assert code == 0, out
    assert "#2: delivered (conv" in out and "wait in the outbox" not in out
    delivered = [json.loads(line) for line in sent.read_text().splitlines()]
    assert [d["content"]["text"][:7] for d in delivered] == ["Welcome", "Again"]
    assert invoke("store", "outbox", "--store", str(store))[1] == "0 message(s) waiting\n"


def test_the_outbox_listing_says_which_adapters_already_took_a_message(tmp_path: Path) -> None:
    store = tmp_path / "cc.db"
    _letter(store, _web_message("w-4", "Hello?"))
    invoke("replay", "--store", str(store), *FLOW, "--all")  # no adapter: the reply waits
    with open_store(store) as db, db.transaction():
        retry = datetime(2026, 1, 5, 10, 1, tzinfo=UTC)
        db.outbound_failed(1, "HTTP 503", retry, ["jsonl:archive.jsonl"])
    code, out = invoke("store", "outbox", "--store", str(store))
    assert code == 0, out
    assert out.splitlines()[0].endswith(
        "(1 attempt(s), next try 2026-01-05 10:01:00): HTTP 503 "
        "(already delivered to jsonl:archive.jsonl)"
    )


def test_replay_does_not_resend_what_the_channel_policy_blocks_now(tmp_path: Path) -> None:
    store, sent = tmp_path / "cc.db", tmp_path / "sent.jsonl"
    _letter(store, _web_message("w-5", "Hello?"))
    invoke("replay", "--store", str(store), *FLOW, "--all")
    with open_store(store) as db, db.transaction():
        (waiting,) = db.pending_outbound()
        at = datetime(2026, 1, 5, 11, tzinfo=UTC)
        given_up = {**waiting.message, "channel": "sms", "recipient": "+447700900999"}
        db.dead_letter("outbound:sms", {**given_up, "account": "+447480000000"}, "HTTP 503", at)
        db.set_opted_out("sms", "+447480000000", "+447700900999", True, at)
    code, out = invoke(
        "replay", "--store", str(store), *FLOW, "--id", "2", "--outbound", f"jsonl:{sent}"
    )
    assert code == 1, out
    assert "#2: not sent, blocked (opted_out): the customer opted out" in out
    delivered = [json.loads(line) for line in sent.read_text().splitlines()]
    assert [d["channel"] for d in delivered] == ["web"]  # the outbox's web reply only


@contextmanager
def _service_engine(store: str | Path) -> Iterator[None]:
    """What a running `flowlang serve` holds on the store while its engine runs: the engine
    lock of a SQLite file, the lead of a PostgreSQL store."""
    if isinstance(store, Path):
        held = engine_lock(store)
        try:
            yield
        finally:
            held.close()
        return
    leadership = Leadership(store, "http://127.0.0.1:8808")
    try:
        assert leadership.try_lead() is not None
        yield
    finally:
        leadership.close()


def test_replay_and_dry_run_refuse_to_run_a_second_engine_beside_a_service(
    durable_location: str | Path,
) -> None:
    store = durable_location
    _letter(store, _web_message("w-3", "Is my card on its way?"))
    with _service_engine(store):
        code, out = invoke("replay", "--store", str(store), *FLOW, "--all")
        assert code == 2, out
        assert "flowlang replay would run a second" in out
        code, out = invoke("dry-run", *FLOW, "-m", "examples/messages.yaml", "--store", str(store))
        assert code == 2 and "flowlang dry-run would run a second" in out, out
        if not isinstance(store, Path):
            assert "(at http://127.0.0.1:8808)" in out
        code, out = invoke(
            "send", "--store", str(store), "-d", "examples/deployment.yaml",
            *("--channel", "sms", "--to", "+447700900999", "--template", "welcome"),
        )  # fmt: skip
        assert code == 2 and "flowlang send would run a second" in out, out
    code, out = invoke("store", "outbox", "--store", str(store))
    assert "+447700900999" not in out, out
    # Nothing ran: the letter still waits, no customer was made.
    code, out = invoke("store", "dead-letters", "--store", str(store))
    assert "#1 " in out and "0 dead letter(s)" not in out
    code, out = invoke("store", "customer", "--store", str(store), "phone:+44 7700 900123")
    assert code != 0
    # With the service gone, the command runs, and lets go of the engine when it is done.
    code, out = invoke("replay", "--store", str(store), *FLOW, "--all")
    assert code == 0, out
    with _service_engine(store):
        pass
