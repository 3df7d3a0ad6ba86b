"""A public reply on a public post or comment answers the customer's latest one: under their
Facebook comment (`POST /{comment_id}/comments`), on their post only when they wrote the post,
and on X `in_reply_to_tweet_id` their latest post or reply."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowlang.channels.inbound import normalise
from flowlang.channels.outbound import send_request
from flowlang.channels.outbound.send_bodies import SendRequest
from flowlang.events import AgentAction, AgentEvent, EventKind, InboundEvent
from flowlang.runtime.engine import Engine, Outcome
from flowlang.runtime.memory import RecordingAdapter
from flowlang.store import SqliteStore
from tests.channels.helpers import engine_for

ROOT = Path(__file__).resolve().parents[2]
PAYLOADS = ROOT / "examples" / "payloads"
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
PAGE_POST = "104857362910_987654321"  # the page's own post the customer commented on
COMMENT = "987654321_1122334455"  # examples/payloads/facebook_page/comment.json

FLOW = """flow "Public"
serve posts and comments on facebook_page page "GBank", x_public handle "@GbankSocial"

state start:
    reply "Thanks {{ customer.name or 'there' }}, we're looking into it."
    route to queue "Social Public"
"""


def _engine(tmp_path: Path, store: Any = None) -> tuple[Engine, RecordingAdapter]:
    return engine_for(tmp_path, FLOW, store=store)


def _webhook(channel: str, name: str) -> list[InboundEvent]:
    return normalise(channel, (PAYLOADS / name).read_bytes(), received_at=T0)


def _requests(outcome: Outcome) -> list[SendRequest]:
    return [send_request(d.message) for d in outcome.deliveries if d.status in ("sent", "degraded")]


def _comment(comment_id: str, at: datetime) -> InboundEvent:
    return InboundEvent(
        event_id=comment_id,
        channel="facebook_page",
        kind=EventKind.COMMENT,
        account="104857362910",
        sender_id="5512345678901234",
        text="And the card fee?",
        post_id=PAGE_POST,
        comment_id=comment_id,
        timestamp=at,
    )


def _agent_reply(engine: Engine, conversation_id: str, at: datetime, n: int = 1) -> Outcome:
    conversation = engine.store.get_conversation(conversation_id)
    assert conversation is not None and conversation.agent is not None
    return engine.handle(
        AgentEvent(
            event_id=f"agent-{n}",
            conversation_id=conversation_id,
            agent_id=conversation.agent,
            action=AgentAction.REPLY,
            text="Alice here: it's fixed.",
            timestamp=at,
        )
    )


# ---------------------------------------------------------------- Facebook page
def test_a_flows_public_reply_to_a_page_comment_nests_under_the_comment(tmp_path: Path) -> None:
    engine, sent = _engine(tmp_path)
    (comment,) = _webhook("facebook_page", "facebook_page/comment.json")
    (request,) = _requests(engine.handle(comment))
    # Not /{post_id}/comments: that would be a new top-level comment on the page's post.
    assert (request.channel, request.method, request.path) == (
        "facebook_page",
        "POST",
        f"/{COMMENT}/comments",
    )
    assert request.body == {"message": "Thanks Chris Doe, we're looking into it."}
    assert [m.in_reply_to for m in sent.sent] == [COMMENT]


def test_an_agents_public_reply_answers_the_customers_latest_comment(tmp_path: Path) -> None:
    engine, _sent = _engine(tmp_path)
    (comment, *_) = _webhook("facebook_page", "facebook_page/comment.json")
    first = engine.handle(comment)
    conversation = first.conversation_id or ""
    engine.handle(_comment("987654321_2", T0 + timedelta(minutes=3)))
    (request,) = _requests(_agent_reply(engine, conversation, T0 + timedelta(minutes=5)))
    assert request.path == "/987654321_2/comments"
    assert request.path not in (f"/{COMMENT}/comments", f"/{PAGE_POST}/comments")


def test_a_reply_to_the_customers_own_post_is_a_comment_on_that_post(tmp_path: Path) -> None:
    engine, _sent = _engine(tmp_path)
    (post,) = _webhook("facebook_page", "facebook_page/post.json")
    assert post.kind is EventKind.POST and post.comment_id is None
    (request,) = _requests(engine.handle(post))
    assert request.path == "/104857362910_555000111/comments"


def test_the_comment_answered_is_kept_by_the_store_across_a_restart(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "cc.sqlite") as store:
        engine, _ = _engine(tmp_path, store=store)
        (comment, *_) = _webhook("facebook_page", "facebook_page/comment.json")
        conversation = engine.handle(comment).conversation_id or ""
    with SqliteStore(tmp_path / "cc.sqlite") as store:
        engine, _ = _engine(tmp_path, store=store)
        (request,) = _requests(_agent_reply(engine, conversation, T0 + timedelta(hours=1)))
        assert request.path == f"/{COMMENT}/comments"


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.sampled_from(["comment", "post"]), min_size=1, max_size=5))
def test_a_public_reply_always_answers_the_latest_comment_or_post(
    tmp_path_factory: Any, kinds: list[str]
) -> None:
    engine, _sent = _engine(tmp_path_factory.mktemp("fb"))
    conversation = ""
    for n, kind in enumerate(kinds):
        at = T0 + timedelta(minutes=n)
        event = _comment(f"987654321_{n}", at)
        if kind == "post":  # a visitor post of the customer's own: no comment id
            event = event.model_copy(
                update={"kind": EventKind.POST, "comment_id": None, "post_id": f"104857362910_{n}"}
            )
        conversation = engine.handle(event).conversation_id or conversation
    last = len(kinds) - 1
    expected = (
        f"/987654321_{last}/comments"
        if kinds[-1] == "comment"
        else f"/104857362910_{last}/comments"
    )
    (request,) = _requests(_agent_reply(engine, conversation, T0 + timedelta(hours=1)))
    assert request.path == expected


# ---------------------------------------------------------------- X public posts
def test_a_reply_on_x_answers_the_customers_reply_not_the_post_it_replied_to(
    tmp_path: Path,
) -> None:
    engine, _sent = _engine(tmp_path)
    (reply,) = _webhook("x_public", "x/reply.json")
    (request,) = _requests(engine.handle(reply))
    assert (request.channel, request.path) == ("x_public", "/2/tweets")
    assert request.body["reply"] == {"in_reply_to_tweet_id": "1877000000000000301"}


def test_a_reply_on_x_answers_the_customers_latest_post(tmp_path: Path) -> None:
    engine, _sent = _engine(tmp_path)
    (mention,) = _webhook("x_public", "x/mention.json")
    first = engine.handle(mention)
    assert _requests(first)[0].body["reply"] == {"in_reply_to_tweet_id": "1877000000000000201"}
    (reply,) = _webhook("x_public", "x/reply.json")
    engine.handle(reply.model_copy(update={"timestamp": T0 + timedelta(minutes=10)}))
    later = _agent_reply(engine, first.conversation_id or "", T0 + timedelta(minutes=15))
    (request,) = _requests(later)
    assert request.body["reply"] == {"in_reply_to_tweet_id": "1877000000000000301"}


def test_a_reply_on_x_after_an_edit_answers_the_newest_version(tmp_path: Path) -> None:
    engine, _sent = _engine(tmp_path)
    (mention,) = _webhook("x_public", "x/mention.json")
    first = engine.handle(mention)
    (edited,) = _webhook("x_public", "x/edited.json")
    engine.handle(edited)
    later = _agent_reply(engine, first.conversation_id or "", T0 + timedelta(minutes=15))
    assert _requests(later)[0].body["reply"] == {"in_reply_to_tweet_id": "1877000000000000202"}
