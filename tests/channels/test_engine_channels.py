"""Channel rules through the whole engine, as a host embedding it sees them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from flowlang.events import AgentAction, AgentEvent, InboundEvent
from flowlang.project import load_project
from flowlang.runtime.engine import Engine
from flowlang.runtime.memory import RecordingAdapter

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _engine(tmp_path: Path) -> tuple[Engine, RecordingAdapter]:
    flow = tmp_path / "sms.flow"
    flow.write_text(
        'flow "SMS"\nserve messages on sms\n\nstate start:\n'
        '    reply "Thanks, an agent will text you back."\n'
        '    route to queue "Retail Banking"\n',
        "utf-8",
    )
    project, ws = load_project(flow, ROOT / "examples" / "deployment.yaml")
    assert project is not None, [d.message for d in ws.diagnostics]
    sent = RecordingAdapter()
    return project.engine(adapters=[sent]), sent


def sms(text: str, minutes: int, event_id: str) -> InboundEvent:
    return InboundEvent(
        event_id=event_id,
        channel="sms",
        sender_id="+447700900999",
        sender_phone="+447700900999",
        text=text,
        timestamp=T0 + timedelta(minutes=minutes),
    )


def test_stop_opts_out_help_answers_and_start_opts_back_in(tmp_path: Path) -> None:
    engine, sent = _engine(tmp_path)
    first = engine.handle(sms("My card is blocked", 0, "s1"))
    assert [d.status for d in first.deliveries] == ["sent"]
    stop = engine.handle(sms("STOP", 1, "s2"))
    assert "opted out" in stop.note and stop.trace == []
    reply = engine.handle(
        AgentEvent(
            event_id="a1",
            conversation_id=first.conversation_id or "",
            agent_id="alice",
            action=AgentAction.REPLY,
            text="Your card is unblocked",
            timestamp=T0 + timedelta(minutes=2),
        )
    )
    assert [(d.status, d.reason_code) for d in reply.deliveries] == [("blocked", "opted_out")]
    help_ = engine.handle(sms("help", 3, "s3"))
    assert help_.note.startswith("the customer asked for help")
    # Help text goes out only to a customer who has not opted out.
    assert [d.reason_code for d in help_.deliveries] == ["opted_out"]
    engine.handle(sms("START", 4, "s4"))
    helped = engine.handle(sms("HELP", 5, "s5"))
    assert [d.status for d in helped.deliveries] == ["sent"]
    assert "Reply STOP" in str(helped.deliveries[0].message.content["text"])
    texts = [m.content.get("text") for m in sent.sent]
    assert "Your card is unblocked" not in texts
