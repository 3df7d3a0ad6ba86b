"""A reply marked private on a public post or comment goes by the channel's private route (a
Messenger Private Reply to the comment, a DM to the author on X) or is blocked: never public."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from flowlang.channels.inbound import normalise
from flowlang.channels.outbound import JsonLinesAdapter, send_request
from flowlang.channels.outbound.send_bodies import PrivateReplyError, SendRequest
from flowlang.channels.policy import ChannelPolicy
from flowlang.channels.registry import RegistryError, builtin_keys, builtin_registry, load_registry
from flowlang.cli import main
from flowlang.events import AgentAction, AgentEvent, EventKind, InboundEvent
from flowlang.harness import SampleError, load_samples, run_samples
from flowlang.project import load_project
from flowlang.runtime.engine import Engine, Outcome
from flowlang.runtime.memory import AllowAll, RecordingAdapter
from flowlang.runtime.ports import Delivery, OutboundMessage
from flowlang.store import SqliteStore
from tests.channels.helpers import DEPLOYMENT, engine_for
from tests.runtime.helpers import engine_of, program

ROOT = Path(__file__).resolve().parents[2]
PAYLOADS = ROOT / "examples" / "payloads"
PAGE = "104857362910"
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # the comment in examples/payloads/facebook_page
COMMENT = "987654321_1122334455"
SENDER = "5512345678901234"

PUBLIC_FLOW = """flow "Public"
serve posts and comments on facebook_page page "GBank", x_public handle "@GbankSocial"

state start:
    reply privately "Hi {{ customer.name or 'there' }}, which account is it about?"
    route to queue "Social Public"
"""


def _engine(
    tmp_path: Path, flow: str = PUBLIC_FLOW, rules: str = "", store: Any = None
) -> tuple[Engine, RecordingAdapter]:
    deployment = DEPLOYMENT.read_text("utf-8")
    if rules:
        deployment = deployment.replace(
            "  facebook_page:\n", f"  facebook_page:\n    rules:\n{rules}", 1
        )
    (tmp_path / "deployment.yaml").write_text(deployment, "utf-8")
    return engine_for(tmp_path, flow, tmp_path / "deployment.yaml", store)


def _webhook(channel: str, name: str) -> list[InboundEvent]:
    return normalise(channel, (PAYLOADS / name).read_bytes(), received_at=T0)


def _comment(comment_id: str, at: datetime, event_id: str = "") -> InboundEvent:
    return InboundEvent(
        event_id=event_id or f"{comment_id}:add",
        channel="facebook_page",
        kind=EventKind.COMMENT,
        account=PAGE,
        sender_id=SENDER,
        text="Why did my card fee go up again?",
        post_id="104857362910_987654321",
        comment_id=comment_id,
        timestamp=at,
    )


def _agent_reply(
    engine: Engine, conversation_id: str, at: datetime, text: str, n: int = 1
) -> Outcome:
    """A private reply by the agent who holds the conversation (Social Public answers at once)."""
    conversation = engine.store.get_conversation(conversation_id)
    assert conversation is not None and conversation.agent is not None
    return engine.handle(
        AgentEvent(
            event_id=f"agent-{n}",
            conversation_id=conversation_id,
            agent_id=conversation.agent,
            action=AgentAction.REPLY,
            text=text,
            visibility="privately",
            timestamp=at,
        )
    )


def _requests(outcome: Outcome) -> list[SendRequest]:
    return [send_request(d.message) for d in outcome.deliveries if d.status in ("sent", "degraded")]


def _codes(outcome: Outcome) -> list[tuple[str, str]]:
    return [(d.status, d.reason_code) for d in outcome.deliveries]


# ---------------------------------------------------------------- Facebook page comments
def test_a_flows_private_reply_to_a_page_comment_is_a_messenger_private_reply(
    tmp_path: Path,
) -> None:
    engine, sent = _engine(tmp_path)
    (comment,) = _webhook("facebook_page", "facebook_page/comment.json")
    assert comment.comment_id == COMMENT
    outcome = engine.handle(comment)
    assert _codes(outcome) == [("sent", "private_reply")]
    assert "Private Reply to the customer's comment" in outcome.deliveries[0].reason
    (request,) = _requests(outcome)
    assert (request.channel, request.method, request.path) == (
        "messenger",
        "POST",
        "/{page_id}/messages",
    )
    assert request.body["recipient"] == {"comment_id": COMMENT}
    assert request.body["message"] == {"text": "Hi Chris Doe, which account is it about?"}
    # Nothing reached the comments endpoint: the only message sent is the private one.
    assert [(m.channel, m.private_reply_to) for m in sent.sent] == [
        ("messenger", {"comment_id": COMMENT})
    ]


def test_only_one_private_reply_per_comment_and_the_agents_second_is_blocked(
    tmp_path: Path,
) -> None:
    engine, sent = _engine(tmp_path)
    first = engine.handle(_comment(COMMENT, T0))
    conversation = first.conversation_id or ""
    second = _agent_reply(engine, conversation, T0 + timedelta(minutes=5), "Hi, Alice here")
    assert _codes(second) == [("blocked", "private_reply_used")]
    assert "only one private reply per comment" in second.deliveries[0].reason
    assert "Facebook Messenger" in second.deliveries[0].suggestion
    assert len(sent.sent) == 1
    # A new comment of the customer's can have its own private reply.
    engine.handle(_comment("987654321_2", T0 + timedelta(hours=1)))
    third = _agent_reply(engine, conversation, T0 + timedelta(hours=2), "Hi, Alice here", 2)
    assert _codes(third) == [("sent", "private_reply")]
    assert _requests(third)[0].body["recipient"] == {"comment_id": "987654321_2"}


def test_the_private_reply_used_is_remembered_by_the_store_across_a_restart(
    tmp_path: Path,
) -> None:
    with SqliteStore(tmp_path / "cc.sqlite") as store:
        engine, _ = _engine(tmp_path, store=store)
        first = engine.handle(_comment(COMMENT, T0))
        assert _codes(first) == [("sent", "private_reply")]
    with SqliteStore(tmp_path / "cc.sqlite") as store:
        engine, sent = _engine(tmp_path, store=store)  # a new process: a new policy object
        again = _agent_reply(
            engine, first.conversation_id or "", T0 + timedelta(hours=1), "Alice here"
        )
        assert _codes(again) == [("blocked", "private_reply_used")]
        assert sent.sent == []


def test_the_history_shows_a_private_reply_went_privately(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "cc.sqlite") as store:
        engine, _ = _engine(tmp_path, store=store)
        engine.handle(_comment(COMMENT, T0))
    result = CliRunner().invoke(
        main,
        ["store", "history", "--store", str(tmp_path / "cc.sqlite"), "facebook_page:" + SENDER],
    )
    assert result.exit_code == 0, result.output
    assert "<- Why did my card fee go up again?" in result.output
    assert "-> (privately, by messenger) Hi there, which account is it about?" in result.output


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (timedelta(days=7) - timedelta(seconds=1), ("sent", "private_reply")),
        (timedelta(days=7), ("blocked", "private_reply_expired")),
    ],
)
def test_a_private_reply_is_allowed_within_7_days_of_the_comment(
    tmp_path: Path, after: timedelta, expected: tuple[str, str]
) -> None:
    flow = PUBLIC_FLOW.replace("    reply privately", "    log").replace('"Hi {{', '"at {{')
    engine, sent = _engine(tmp_path, flow)
    first = engine.handle(_comment(COMMENT, T0))
    assert first.deliveries == []
    late = _agent_reply(engine, first.conversation_id or "", T0 + after, "Alice here")
    assert _codes(late) == [expected]
    assert len(sent.sent) == (1 if expected[0] == "sent" else 0)


def test_the_days_and_the_route_are_deployment_data(tmp_path: Path) -> None:
    engine, sent = _engine(tmp_path, rules="      private_reply: {days: 2}\n")
    first = engine.handle(_comment(COMMENT, T0, "c1"))
    assert _codes(first) == [("sent", "private_reply")]
    engine.handle(_comment("987654321_2", T0 + timedelta(hours=1), "c2"))
    late_at = T0 + timedelta(days=2, hours=1)
    late = _agent_reply(engine, first.conversation_id or "", late_at, "Hi")
    assert _codes(late) == [("blocked", "private_reply_expired")]
    assert "within 2 days of the comment" in late.deliveries[0].reason
    # Without a private route the reply is blocked, never posted publicly instead.
    (tmp_path / "none").mkdir()
    engine, sent = _engine(tmp_path / "none", rules="      private_reply: null\n")
    blocked = engine.handle(_comment(COMMENT, T0))
    assert _codes(blocked) == [("blocked", "no_private_route")]
    assert "never posted publicly" in blocked.deliveries[0].reason
    assert sent.sent == []


def test_a_comment_without_its_id_gets_no_private_reply(tmp_path: Path) -> None:
    engine, sent = _engine(tmp_path)
    event = _comment(COMMENT, T0).model_copy(update={"comment_id": None})
    outcome = engine.handle(event)
    assert _codes(outcome) == [("blocked", "private_reply_no_target")]
    assert sent.sent == []


# ---------------------------------------------------------------- X public posts
def test_on_x_an_agents_private_reply_is_a_dm_to_the_author_and_a_flows_is_blocked(
    tmp_path: Path,
) -> None:
    engine, sent = _engine(tmp_path)
    (mention,) = _webhook("x_public", "x/mention.json")
    outcome = engine.handle(mention)
    # X allows automated DMs only after the customer has sent one.
    assert _codes(outcome) == [("blocked", "private_reply_needs_agent")]
    assert sent.sent == []
    agent = _agent_reply(
        engine, outcome.conversation_id or "", mention.timestamp + timedelta(hours=1), "Hi"
    )
    assert _codes(agent) == [("sent", "private_reply")]
    (request,) = _requests(agent)
    assert (request.channel, request.path) == ("x_dm", "/2/dm_conversations/with/4470011/messages")
    assert request.body == {"text": "Hi"}
    assert [m.channel for m in sent.sent] == ["x_dm"]


# ---------------------------------------------------------------- never a public request
def test_the_public_endpoints_refuse_a_message_marked_private() -> None:
    for channel in ("facebook_page", "x_public"):
        message = OutboundMessage("c1", channel, "acct", "u1", "agent", {"text": "Hi"}, "privately")
        with pytest.raises(PrivateReplyError, match="never posted publicly"):
            send_request(message)


def test_without_the_channel_policy_a_private_reply_is_still_never_posted(tmp_path: Path) -> None:
    """A host that plugs in `AllowAll` keeps the message as a dead letter instead."""
    out = tmp_path / "sent.jsonl"
    store_engine, _ = _engine(tmp_path)
    engine = engine_of(store_engine.program, adapters=[JsonLinesAdapter(out)], policy=AllowAll())
    outcome = engine.handle(_comment(COMMENT, T0))
    assert [f.retry_at for f in outcome.failed_sends] == [None]
    assert "PrivateReplyError" in outcome.failed_sends[0].reason
    assert not out.exists()


def test_a_private_reply_kept_before_it_was_routed_is_routed_when_it_is_sent_again(
    tmp_path: Path,
) -> None:
    """An `outbound:facebook_page` dead letter from before private routes: `engine.resend`
    sends it by the private route, once per comment, and never as a comment."""
    flow = PUBLIC_FLOW.replace("    reply privately", "    log")
    with SqliteStore(tmp_path / "cc.sqlite") as store:
        engine, sent = _engine(tmp_path, flow, store=store)
        first = engine.handle(_comment(COMMENT, T0))
        old = OutboundMessage(
            first.conversation_id or "",
            "facebook_page",
            PAGE,
            "5512345678901234",
            "agent",
            {"kind": "text", "text": "Hi Chris, which account?"},
            "privately",
            "104857362910_987654321",
        )
        later = T0 + timedelta(hours=1)
        again = engine.resend(vars(old), later)
        assert _codes(again) == [("sent", "private_reply")]
        assert _requests(again)[0].body["recipient"] == {"comment_id": COMMENT}
        twice = engine.resend(vars(old), later + timedelta(minutes=1))
        assert _codes(twice) == [("blocked", "private_reply_used")]
        assert [m.channel for m in sent.sent] == ["messenger"]


def test_a_private_route_must_be_a_private_channel() -> None:
    with pytest.raises(RegistryError, match=r"facebook_page.*private_reply.via.*x_public"):
        load_registry({"facebook_page": {"private_reply": {"via": "x_public"}}})
    with pytest.raises(RegistryError, match="'nowhere' is not a private channel"):
        load_registry({"x_public": {"private_reply": {"via": "nowhere"}}})


def _hold(engine: Engine, conversation_id: str, agent: str | None) -> None:
    conversation = engine.store.get_conversation(conversation_id)
    assert conversation is not None
    conversation.status, conversation.agent = ("with_agent", agent) if agent else ("open", None)
    engine.store.save_conversation(conversation)


_PUBLIC_PATHS = ("/comments", "/replies", "/2/tweets")


def _is_public(request: SendRequest) -> bool:
    rules = builtin_registry().get(request.channel)
    return (rules is not None and rules.public) or request.path.endswith(_PUBLIC_PATHS)


CONTENT = st.one_of(
    st.builds(lambda t: {"kind": "text", "text": t}, st.text(min_size=1, max_size=40)),
    st.builds(
        lambda t, o: {"kind": "quick_replies", "text": t, "options": o},
        st.text(min_size=1, max_size=20),
        st.lists(st.text(min_size=1, max_size=10), min_size=1, max_size=15),
    ),
    st.just({"kind": "image", "url": "https://cdn.example/a.png", "caption": "Rates"}),
    st.just({"kind": "sticker", "sticker_id": "1/2"}),
)
# Public posts and comments, where a private reply has somewhere public it must not go, half
# the time; every other kind and channel the rest.
KINDS = st.one_of(
    st.sampled_from([EventKind.COMMENT, EventKind.POST]),
    st.sampled_from(
        [EventKind.MESSAGE, EventKind.POST, EventKind.COMMENT, EventKind.POSTBACK, EventKind.EDIT]
    ),
)
CHANNELS = st.one_of(
    st.sampled_from(["facebook_page", "x_public"]), st.sampled_from(builtin_keys())
)
STEP = st.tuples(
    st.sampled_from(["customer", "agent"]),
    KINDS,
    st.integers(min_value=0, max_value=10 * 24 * 60),  # minutes after the previous step
    CONTENT,
    st.one_of(st.none(), st.sampled_from(["c1", "c2", "c3"])),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    channel=CHANNELS,
    allow_all=st.booleans(),
    first=KINDS,
    steps=st.lists(STEP, max_size=8),
)
def test_no_reply_marked_private_ever_produces_a_public_send_request(
    channel: str, allow_all: bool, first: EventKind, steps: list[Any]
) -> None:
    flow = program('reply privately "{{ message.text }}"\nreply privately "Thanks"')
    sent = RecordingAdapter()
    engine = engine_of(flow, adapters=[sent], policy=AllowAll() if allow_all else ChannelPolicy())
    at = T0
    deliveries: list[Delivery] = []

    def customer(kind: EventKind, text: str, comment: str | None, n: int) -> Outcome:
        event = InboundEvent(
            event_id=f"e{n}",
            channel=channel,
            kind=kind,
            account="acct",
            sender_id="u1",
            text=text or "hi",
            post_id="p1",
            comment_id=comment,
            timestamp=at,
        )
        return engine.handle(event)

    outcome = customer(first, "first", "c0", 0)
    deliveries += outcome.deliveries
    conversation = outcome.conversation_id or ""
    for n, (who, kind, minutes, content, comment) in enumerate(steps, 1):
        at += timedelta(minutes=minutes)
        if who == "customer":
            deliveries += customer(kind, str(content.get("text") or ""), comment, n).deliveries
            continue
        _hold(engine, conversation, "alice")  # as the ACD does when alice accepts it
        reply = AgentEvent(
            event_id=f"a{n}",
            conversation_id=conversation,
            agent_id="alice",
            action=AgentAction.REPLY,
            content=content,
            visibility="privately",
            timestamp=at,
        )
        replied = engine.handle(reply).deliveries
        assert len(replied) == 1  # sent, degraded or blocked: decided by the policy
        deliveries += replied
        _hold(engine, conversation, None)  # back to the flow for the customer's next message
    for delivery in deliveries:
        event(f"{delivery.message.channel} {delivery.status} {delivery.reason_code}")
        assert delivery.message.visibility == "privately"
        if delivery.status not in ("sent", "degraded"):
            continue
        try:
            request = send_request(delivery.message)
        except PrivateReplyError:
            assert allow_all  # only a host's own policy can let it get this far
            continue
        assert not _is_public(request), (channel, delivery, request)
    for message in sent.sent:
        rules = builtin_registry().get(message.channel)
        assert allow_all or rules is None or not rules.public, message


# ---------------------------------------------------------------- dry-run samples
SAMPLES = """start: 2026-01-05T09:00:00Z
conversations:
  - channel: facebook_page
    account: GBank
    customer: {id: fb-10, name: Marco}
    events:
      - comment: "My card was charged twice"
        post_id: "104857362910_5"
      - {at: +6m, reply: "Hi Marco, which card is it?", privately: true}
      - {at: +8m, reply: "Marco, the date too please", privately: true}
"""


def test_a_dry_run_shows_how_an_agents_private_reply_went_and_why_one_was_blocked(
    tmp_path: Path,
) -> None:
    flow = (ROOT / "flows" / "social.flow").read_text("utf-8")
    path = tmp_path / "private.yaml"
    path.write_text(SAMPLES, "utf-8")
    _engine(tmp_path, flow)  # writes the flow and the deployment
    project, _ws = load_project(tmp_path / "test.flow", tmp_path / "deployment.yaml")
    assert project is not None
    report = run_samples(project, load_samples(path)).render()
    assert "agent reply privately: 'Hi Marco, which card is it?'" in report
    assert (
        "-> agent reply sent (privately by Facebook Messenger, as a Private Reply to the "
        "customer's comment): 'Hi Marco, which card is it?'"
    ) in report
    assert (
        "xx agent reply blocked [private_reply_used]: only one private reply per comment" in report
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(SAMPLES.replace("privately: true}", 'privately: "yes"}', 1), "utf-8")
    with pytest.raises(SampleError) as caught:
        load_samples(bad)
    (problem,) = caught.value.diagnostics
    assert "`privately: true` marks an agent's reply private" in problem.message
    assert problem.span.line == 9


def test_an_instagram_private_reply_is_addressed_to_the_comment_by_the_account() -> None:
    """The body an Instagram comment channel's private route would send (docs/channels.md)."""
    message = OutboundMessage(
        "c1", "instagram", "17841405309211844", "igsid-1", "agent", {"text": "Hi"}, "privately"
    )
    message.private_reply_to = {"comment_id": "17858893269000001"}
    request = send_request(message)
    assert (request.channel, request.path) == ("instagram", "/{ig_user_id}/messages")
    assert request.body["recipient"] == {"comment_id": "17858893269000001"}
    assert request.body["message"] == {"text": "Hi"}
