"""A deployment's accounts at run time: a public account's keyword filter is the flow's
`message.actionable` (the business's own handle never counts), and the queues an account names
are the values of the flow's params of those names."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from flowlang.events import EventKind, InboundEvent
from flowlang.project import load_project
from flowlang.runtime import effects as fx
from flowlang.runtime.accounts import AccountRules, Accounts

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DEPLOYMENT = (ROOT / "examples" / "deployment.yaml").read_text("utf-8")


def _post(text: str, channel: str = "x_public", account: str = "@GbankSocial") -> InboundEvent:
    return InboundEvent(
        event_id=f"p-{text}",
        channel=channel,
        kind=EventKind.POST,
        account=account,
        sender_id="7654321098765432",
        text=text,
        post_id="1877",
        timestamp=T0,
    )


def _routed(
    tmp_path: Path, deployment: str, text: str, account: str = "@GbankSocial"
) -> tuple[str | None, bool]:
    (tmp_path / "deployment.yaml").write_text(deployment, "utf-8")
    project, ws = load_project(ROOT / "flows" / "social.flow", tmp_path / "deployment.yaml")
    assert project is not None, [d.message for d in ws.diagnostics]
    outcome = project.engine().handle(_post(text, account=account))
    queues = [e.queue for e in outcome.effects if isinstance(e, fx.RouteToQueue)]
    marked = any(isinstance(e, fx.MarkNotActionable) for e in outcome.effects)
    return (queues[0] if queues else None), marked


def test_a_post_that_only_mentions_the_business_is_not_actionable(tmp_path: Path) -> None:
    assert _routed(tmp_path, DEPLOYMENT, "@GbankSocial love the new app") == (None, True)
    assert _routed(tmp_path, DEPLOYMENT, "@GbankSocial my card fee?") == ("Social Public", False)


def test_the_accounts_keywords_are_the_filter(tmp_path: Path) -> None:
    narrowed = DEPLOYMENT.replace(
        'keywords: ["fee*", "loan*", "card*", "account*", help, problem, "#nothappy"]\n'
        "  facebook_page:",
        'keywords: ["mortgage"]\n  facebook_page:',
    )
    assert narrowed != DEPLOYMENT
    assert _routed(tmp_path, narrowed, "@GbankSocial my card fee?") == (None, True)
    assert _routed(tmp_path, narrowed, "@GbankSocial mortgage rates?")[0] == "Social Public"


def test_the_accounts_public_queue_is_where_its_posts_go(tmp_path: Path) -> None:
    moved = DEPLOYMENT.replace(
        '        id: "@GbankSocial"\n        public_queue: Social Public',
        '        id: "@GbankSocial"\n        public_queue: Overflow',
    )
    assert moved != DEPLOYMENT
    assert _routed(tmp_path, moved, "@GbankSocial my card fee?") == ("Overflow", False)


def test_a_post_named_by_the_accounts_x_user_id_gets_its_queue_and_its_filter(
    tmp_path: Path,
) -> None:
    """X names the account by its numeric user id where a post neither replies to nor
    mentions its handle (`channels/inbound/x.py`)."""
    moved = DEPLOYMENT.replace(
        '        id: "@GbankSocial"\n        public_queue: Social Public',
        '        id: "@GbankSocial"\n        public_queue: Overflow',
    )
    assert moved != DEPLOYMENT
    by_id = "1450000000000000001"
    assert _routed(tmp_path, moved, "my card fee?", account=by_id) == ("Overflow", False)
    assert _routed(tmp_path, moved, "love the new app", account=by_id) == (None, True)
    assert _routed(tmp_path, moved, "love the new app", account="@GBANKSOCIAL") == (None, True)


def test_a_post_on_an_account_not_listed_is_not_actionable_where_posts_are_filtered(
    tmp_path: Path,
) -> None:
    """The intake keeps such a post aside (a dead letter); the engine is not more permissive."""
    assert _routed(tmp_path, DEPLOYMENT, "my card fee?", account="@SomeoneElse") == (None, True)
    assert _routed(tmp_path, DEPLOYMENT, "my card fee?", account="14500") == (None, True)


def test_the_own_handle_never_makes_a_post_actionable() -> None:
    accounts = Accounts(
        [
            AccountRules(
                channel="x_public",
                account_id="@gbanksocial",
                names=frozenset({"gbanksocial", "gbank social"}),
                keywords=("@GbankSocial", "fee*"),
            )
        ]
    )
    assert not accounts.actionable("x_public", "@GbankSocial", "@GbankSocial love the app")
    assert accounts.actionable("x_public", "@GBANKSOCIAL", "@GbankSocial your FEES!")
    assert not accounts.actionable("x_public", "@SomeoneElse", "your FEES!")  # not listed


def test_a_channel_without_filters_has_every_post_actionable() -> None:
    """Only a channel whose accounts filter posts refuses an account it does not list."""
    filtered = AccountRules("x_public", "gbanksocial", frozenset({"gbanksocial"}), ("fee*",))
    page = AccountRules("facebook_page", "104857362910", frozenset({"104857362910"}))
    accounts = Accounts([filtered, page])
    assert accounts.actionable("facebook_page", "104857362910", "love the app")
    assert accounts.actionable("facebook_page", "999", "a page not listed, no filter")
    assert not accounts.actionable("x_public", "@SomeoneElse", "fees")
    assert Accounts().actionable("x_public", "@SomeoneElse", "no deployment, no filter")


@settings(max_examples=80, deadline=None)
@given(st.text(alphabet="abcdef @#!?", max_size=40))
def test_without_a_service_keyword_nothing_is_actionable(words: str) -> None:
    accounts = Accounts(
        [
            AccountRules(
                channel="x_public",
                account_id="@gbanksocial",
                names=frozenset({"gbanksocial"}),
                keywords=("@GbankSocial", "loan*"),
            )
        ]
    )
    text = f"@GbankSocial {words}"
    assert accounts.actionable("x_public", "@GbankSocial", text) is ("loan" in text.lower())
