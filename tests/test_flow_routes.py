"""Which flow a new conversation starts on when a project runs several: the `serve` lines
decide, the most specific first, then the order the flows were given; the first flow takes
what no flow serves."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowlang.errors import InputError
from flowlang.events import EventKind, InboundEvent
from flowlang.flow_routes import FlowRoutes, unloaded_transfers
from flowlang.project import Project, load_project
from flowlang.runtime.engine import Engine
from flowlang.runtime.memory import MemoryStore
from tests.store.helpers import T0

ROOT = Path(__file__).resolve().parents[1]
DEPLOYMENT = ROOT / "examples" / "deployment.yaml"


def _project(name: str) -> Project:
    project, ws = load_project(ROOT / "flows" / name, DEPLOYMENT)
    assert project is not None, ws.diagnostics
    return project


MESSAGING, SOCIAL = _project("messaging.flow"), _project("social.flow")


def test_each_channel_and_kind_goes_to_the_flow_that_serves_it() -> None:
    routes = FlowRoutes([MESSAGING.program, SOCIAL.program], MESSAGING.deployment)
    messaging, social = MESSAGING.graph.name, SOCIAL.graph.name
    assert routes("whatsapp", "+442079460000", EventKind.MESSAGE) == messaging
    assert routes("facebook_page", "104857362910", EventKind.COMMENT) == social
    assert routes("x_public", "@GbankSocial", EventKind.POST) == social
    # by any name the account answers to: its X user id, its handle in any case, without @
    for named in ("1450000000000000001", "@gbanksocial", "GBANKSOCIAL", "GBank Social"):
        assert routes("x_public", named, EventKind.POST) == social, named
    assert routes("whatsapp", "442079460000", EventKind.MESSAGE) == messaging
    # Both serve Messenger page GBank (by its page id): the flow given first takes it.
    assert routes.candidates("messenger", "104857362910", EventKind.MESSAGE) == [messaging, social]
    reversed_ = FlowRoutes([SOCIAL.program, MESSAGING.program], MESSAGING.deployment)
    assert reversed_("messenger", "104857362910", EventKind.MESSAGE) == social
    # Served by nobody: the first flow.
    assert routes("whatsapp", "+440000000000", EventKind.MESSAGE) == messaging
    assert any("messenger" in overlap for overlap in routes.overlaps())


def test_an_account_named_wins_over_a_whole_channel(tmp_path: Path) -> None:
    anywhere = tmp_path / "any.flow"
    anywhere.write_text('flow "Any"\nserve messages on whatsapp\n\nstate start:\n    end\n')
    project, ws = load_project(anywhere, DEPLOYMENT)
    assert project is not None, ws.diagnostics
    routes = FlowRoutes([project.program, MESSAGING.program], MESSAGING.deployment)
    assert routes("whatsapp", "+442079460000", EventKind.MESSAGE) == MESSAGING.graph.name
    assert routes("whatsapp", "+449999999999", EventKind.MESSAGE) == "Any"


def _versions_run(store: MemoryStore) -> dict[str, str]:
    """Each conversation's channel -> the version its flow ran."""
    channels = {c.id: c.channel for c in store.conversations.values()}
    return {
        channels[e["conversation_id"]]: e["version"]
        for e in store.iter_events()
        if e["kind"] == "flow_path"
    }


def test_an_engine_with_two_flows_starts_each_conversation_on_its_own() -> None:
    store = MemoryStore()
    engine = MESSAGING.engine(store=store, flows=[SOCIAL.program])
    assert list(engine.flows) == [MESSAGING.graph.name, SOCIAL.graph.name]
    comment = InboundEvent(
        event_id="c-1",
        channel="facebook_page",
        kind=EventKind.COMMENT,
        account="104857362910",
        sender_id="fb-1",
        text="My card was charged twice",
        post_id="p-1",
        comment_id="c-1",
        timestamp=T0,
    )
    chat = InboundEvent(
        event_id="w-1",
        channel="whatsapp",
        account="+442079460000",
        sender_id="447700900123",
        text="Hello",
        timestamp=T0,
    )
    engine.handle(comment)
    engine.handle(chat)
    assert _versions_run(store) == {
        "facebook_page": SOCIAL.graph.version,
        "whatsapp": MESSAGING.graph.version,
    }


def test_a_version_is_published_for_the_flow_of_its_name_only(tmp_path: Path) -> None:
    engine: Engine = MESSAGING.engine(store=MemoryStore(), flows=[SOCIAL.program])
    engine.publish(SOCIAL.program)
    renamed = tmp_path / "renamed.flow"
    text = (ROOT / "flows" / "messaging.flow").read_text("utf-8")
    renamed.write_text(text.replace('flow "GBank messaging"', 'flow "Not served here"'), "utf-8")
    stranger, ws = load_project(renamed, DEPLOYMENT)
    assert stranger is not None, ws.diagnostics
    with pytest.raises(InputError, match="the flow is named 'Not served here'"):
        engine.publish(stranger.program)
    assert list(engine.flows) == [MESSAGING.graph.name, SOCIAL.graph.name]


def test_two_flows_of_one_name_are_refused() -> None:
    with pytest.raises(InputError, match="two flows are named"):
        MESSAGING.engine(store=MemoryStore(), flows=[_project("messaging.flow").program])


def test_a_transfer_to_a_flow_not_loaded_beside_it_is_named() -> None:
    premier = _project("premier.flow")
    (said,) = unloaded_transfers([premier.program, SOCIAL.program])
    lines = (ROOT / "flows" / "premier.flow").read_text("utf-8").split("\n")
    line = 1 + next(i for i, text in enumerate(lines) if "transfer to flow" in text)
    assert said == (
        f"'GBank premier' line {line} transfers to flow 'GBank messaging', which is not loaded: "
        "that transfer takes the flow's 'on error'"
    )
    assert unloaded_transfers([MESSAGING.program, premier.program]) == []
